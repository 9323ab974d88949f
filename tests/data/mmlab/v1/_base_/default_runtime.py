# MMOCR 1.x (mmengine) style runtime.
default_scope = 'mmocr'
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=1)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100))
