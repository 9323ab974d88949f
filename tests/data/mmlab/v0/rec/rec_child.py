# A recogniser config with a single (string) _base_ and a list comprehension.
_base_ = '../_base_/runtime.py'

img_norm_cfg = dict(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
mean_255 = [x * 255 for x in img_norm_cfg['mean']]
label_convertor = dict(type='CTCConvertor', dict_type='DICT36', with_unknown=False, lower=True)
model = dict(
    type='CRNNNet',
    preprocessor=None,
    backbone=dict(type='VeryDeepVgg', leaky_relu=False, input_channels=1),
    encoder=None,
    decoder=dict(type='CRNNDecoder', in_channels=512, rnn_flag=True),
    loss=dict(type='CTCLoss'),
    label_convertor=label_convertor,
    pretrained=None)
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(
        type='ResizeOCR',
        height=32,
        min_width=32,
        max_width=None,
        keep_aspect_ratio=True),
    dict(type='Normalize', mean=[127], std=[127]),
    dict(
        type='Collect',
        keys=['img'],
        meta_keys=['filename', 'resize_shape', 'valid_ratio']),
]
data = dict(test=dict(pipeline=test_pipeline), val=dict(pipeline=test_pipeline[1:3]))
checkpoint_config = dict(interval=1)
