# f-strings, string concatenation, and MMOCR 0.x's copy-then-edit idiom.
dataset_type = 'IcdarDataset'
data_root = 'data/toy'
train = dict(
    type=dataset_type,
    ann_file=f'{data_root}/instances_training.json',
    img_prefix=f'{data_root}/imgs',
    pipeline=None)
test1 = dict(
    type=dataset_type,
    ann_file=data_root + '/' + 'instances_test.json',
    img_prefix=f'{data_root}/imgs',
    pipeline=None)
test2 = {key: value for key, value in test1.items()}
test2['ann_file'] = f'{data_root}/instances_val.json'
train_list = [train]
test_list = [test1, test2]
