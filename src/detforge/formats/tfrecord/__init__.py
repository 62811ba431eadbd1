"""TFRecord files: framing, the ``tf.train.Example`` codec and the TF OD API schema."""
