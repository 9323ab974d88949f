# MMOCR 1.x (mmengine) style: _base_.x attribute access, in-place edits of base values.
_base_ = [
    '_base_crnn.py',
    '_base_/default_runtime.py',
    '_base_/datasets/toy.py',
]
work_dir = './work_dirs/{{ fileBasenameNoExtension }}'

toy_rec_train = _base_.toy_rec_train
toy_rec_train.pipeline = _base_.train_pipeline
toy_rec_test = _base_.toy_rec_test
toy_rec_test.pipeline = _base_.test_pipeline
train_list = [toy_rec_train, toy_rec_test]

train_dataloader = dict(
    batch_size=4 * 8,
    num_workers=2**3,
    dataset=dict(type='ConcatDataset', datasets=train_list[:1], pipeline=_base_.train_pipeline))
val_dataloader = dict(
    batch_size=1,
    dataset=dict(type='ConcatDataset', datasets=train_list[1:], pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

# ConfigDict.update merges recursively; assignments store copies of plain dicts.
_base_.model.decoder.update(dict(postprocessor=dict(ignore_chars=['padding']), rnn_flag=False))
_base_.train_cfg.update(dict(max_epochs=200, val_interval=10))
hooks = _base_.pop('default_hooks')
hooks['logger'] = dict(type='LoggerHook', interval=_base_.train_cfg.max_epochs // 4)
default_hooks = dict(_delete_=True, **hooks)
model = dict(backbone=dict(input_channels=_base_.model.backbone.input_channels * 3))
val_evaluator = dict(dataset_prefixes=['Toy'])
test_evaluator = val_evaluator
