# MMOCR 0.x top-level config: a _base_ list, {{_base_.x}} references, overrides, _delete_.
_base_ = [
    '../_base_/runtime.py',
    '../_base_/models/det_model.py',
    '../_base_/pipelines/det_pipeline.py',
    '../_base_/datasets/toy.py',
]

train_list = {{_base_.train_list}}
test_list = {{ _base_.test_list }}
train_pipeline_r18 = {{_base_.train_pipeline_r18}}
test_pipeline_1333_736 = {{_base_.test_pipeline_1333_736}}

model = dict(
    backbone=dict(depth=50, norm_cfg=dict(requires_grad=False)),  # merged into the base dict
    neck=dict(_delete_=True, type='FPNF', in_channels=[256, 512]),  # replaces the base dict
    bbox_head=dict(loss=dict(alpha=1.0)))
log_config = dict(hooks=[dict(type='TensorboardLoggerHook')])  # lists are replaced
total_epochs = 1200 // 2 - 100 % 7
lr = 0.007 * 2 ** -1

data = dict(
    samples_per_gpu=8 * 2,
    workers_per_gpu=4,
    train=dict(type='UniformConcatDataset', datasets=train_list, pipeline=train_pipeline_r18),
    test=dict(
        type='UniformConcatDataset',
        datasets=test_list,
        pipeline=test_pipeline_1333_736))
evaluation = dict(interval=100, metric='hmean-iou')
new_block = dict(_delete_=True, value=1)  # no base key to delete: mmcv would keep _delete_
