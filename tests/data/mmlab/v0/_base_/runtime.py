# MMOCR 0.x (mmcv 1.x) style runtime settings.
checkpoint_config = dict(interval=10)
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
workflow = [('train', 1)]
__private_helper = 42  # names starting with "__" are dropped, as mmcv does
_deprecation_ = dict(expected='other.py')  # mmcv pops this key
