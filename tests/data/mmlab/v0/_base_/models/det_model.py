# A DBNet-like model dict: a variable used inside model, arithmetic, a tuple, negative numbers.
backbone_cfg = dict(
    type='mmdet.ResNet',
    depth=18,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    style='caffe')
base_channels = 64
model = dict(
    type='DBNet',
    backbone=backbone_cfg,
    neck=dict(
        type='FPNC',
        in_channels=[base_channels, base_channels * 2, base_channels * 2**2, 512],
        lateral_channels=256,
        extra=dict(keep=True)),
    bbox_head=dict(
        type='DBHead',
        in_channels=256,
        loss=dict(type='DBLoss', alpha=5.0, beta=10.0, bbce_loss=True),
        postprocessor=dict(type='DBPostprocessor', text_repr_type='quad')),
    train_cfg=None,
    test_cfg=None)
