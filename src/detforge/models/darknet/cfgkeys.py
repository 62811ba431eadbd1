"""What each section of a Darknet ``.cfg`` may hold: its keys, and the range of the keys that
size the network.

:data:`SECTION_KEYS` lists the keys detforge reads or knowingly ignores per section (anything
else is refused by :mod:`detforge.models.darknet.cfg`). :data:`LIMITS` bounds the integer keys
that decide how much memory and time a network takes -- the input size, ``filters``,
``groups``, window ``size``, ``padding`` and ``stride`` -- so that an absurd value
(``width=100000``, ``size=301``) is one error at its line when the cfg is parsed, before any
shape is computed or tensor allocated. The bounds are at least twice every stock cfg's value
(the largest: 640 pixels, 1024 filters, size 3 convolutions, size 13 max-pools, stride 2); the
network builder then bounds the totals: parameters, activations and multiply-adds
(:mod:`detforge.models.darknet.budget`).
"""

from __future__ import annotations

# Largest width/height of [net]: the one bound of every network input side.
from detforge.data.letterbox import MAX_INPUT as MAX_INPUT

MAX_CHANNELS = 16384
"""Largest ``filters`` and ``groups`` of a layer (stock cfgs: at most 1024 filters)."""
MAX_WINDOW = 31
"""Largest ``size`` and ``padding`` of a ``[convolutional]`` window (stock cfgs: 3)."""
MAX_STRIDE = 32
"""Largest ``stride`` (``stride_x``, ``stride_y``) of a ``[convolutional]`` or
``[upsample]`` layer (stock cfgs: 2)."""
MAX_POOL = 128
"""Largest ``size``, ``stride`` and ``padding`` of a ``[maxpool]`` (stock cfgs: size 13 in
the SPP blocks; a pool over a whole feature map, as squeeze-and-excitation blocks use, has its
size and stride)."""


def _strides(high: int) -> dict[str, tuple[int, int]]:
    return {k: (1, high) for k in ("stride", "stride_x", "stride_y")}


LIMITS: dict[str, dict[str, tuple[int, int]]] = {
    "net": {"width": (1, MAX_INPUT), "height": (1, MAX_INPUT)},
    "convolutional": {
        "filters": (1, MAX_CHANNELS),
        "groups": (1, MAX_CHANNELS),
        "size": (1, MAX_WINDOW),
        "padding": (0, MAX_WINDOW),
        **_strides(MAX_STRIDE),
    },
    "maxpool": {"size": (1, MAX_POOL), "padding": (0, MAX_POOL), **_strides(MAX_POOL)},
    "upsample": {"stride": (1, MAX_STRIDE)},
    "route": {"groups": (1, MAX_CHANNELS)},
}
"""Section -> integer key -> ``(lowest, highest)`` value accepted (both included)."""

# Keys every layer section may carry that do not change the forward pass.
_COMMON_TRAIN = frozenset(
    {
        "stopbackward",
        "train_only_bn",
        "dont_update",
        "burnin_update",
        "learning_rate",
        "onlyforward",
        "show_receptive_field",
        "clip",
        "stream",
        "wait_stream",
    }
)

_NET_KEYS = frozenset(
    {
        "width",
        "height",
        "channels",
        "letter_box",
        # training / augmentation settings (no effect on inference)
        "adam",
        "adversarial_lr",
        "angle",
        "aspect",
        "attention",
        "augment_speed",
        "badlabels_rejection_percentage",
        "batch",
        "blur",
        "burn_in",
        "contrastive",
        "contrastive_color",
        "contrastive_jit_flip",
        "cutmix",
        "decay",
        "dynamic_minibatch",
        "ema_alpha",
        "eps",
        "equidistant_point",
        "exposure",
        "flip",
        "gamma",
        "gaussian_noise",
        "hue",
        "label_smooth_eps",
        "learning_rate",
        "learning_rate_min",
        "loss_scale",
        "max_batches",
        "max_chart_loss",
        "max_crop",
        "min_crop",
        "mixup",
        "momentum",
        "mosaic",
        "mosaic_bound",
        "num_sigmas_reject_badlabels",
        "optimized_memory",
        "policy",
        "power",
        "resize_step",
        "saturation",
        "scale",
        "scales",
        "seq_scales",
        "sequential_subdivisions",
        "sgdr_cycle",
        "sgdr_mult",
        "step",
        "steps",
        "subdivisions",
        "time_steps",
        "track",
        "try_fix_nan",
        "unsupervised",
        "use_cuda_graph",
        "weights_reject_freq",
        "B1",
        "B2",
        "random",
        "max_epochs",
    }
)

_YOLO_TRAIN = frozenset(
    {
        "cls_normalizer",
        "counters_per_class",
        "delta_normalizer",
        "dets_for_show",
        "dets_for_track",
        "focal_loss",
        "ignore_thresh",
        "iou_loss",
        "iou_normalizer",
        "iou_thresh",
        "iou_thresh_kind",
        "jitter",
        "label_smooth_eps",
        "max",
        "max_delta",
        "obj_normalizer",
        "objectness_smooth",
        "random",
        "resize",
        "show_details",
        "sim_thresh",
        "track_ciou_norm",
        "track_history_size",
        "truth_thresh",
    }
)

_REGION_TRAIN = frozenset(
    {
        "absolute",
        "bias_match",
        "class_scale",
        "classfix",
        "coord_scale",
        "focal_loss",
        "jitter",
        "log",
        "mask_scale",
        "max",
        "noobject_scale",
        "object_scale",
        "random",
        "rescore",
        "resize",
        "sqrt",
        "thresh",
    }
)

# section name -> keys that are implemented (value affects the network) | ignored ones
SECTION_KEYS: dict[str, frozenset[str]] = {
    "net": _NET_KEYS,
    "convolutional": frozenset(
        {
            "filters",
            "size",
            "stride",
            "stride_x",
            "stride_y",
            "pad",
            "padding",
            "groups",
            "activation",
            "batch_normalize",
        }
    )
    | _COMMON_TRAIN,
    "maxpool": frozenset({"size", "stride", "stride_x", "stride_y", "padding"}) | _COMMON_TRAIN,
    "route": frozenset({"layers", "groups", "group_id"}) | _COMMON_TRAIN,
    "shortcut": frozenset({"from", "activation"}) | _COMMON_TRAIN,
    "upsample": frozenset({"stride", "scale"}) | _COMMON_TRAIN,
    "yolo": frozenset(
        {"mask", "anchors", "classes", "num", "scale_x_y", "new_coords", "nms_kind", "beta_nms"}
    )
    | _YOLO_TRAIN
    | _COMMON_TRAIN,
    "region": frozenset({"anchors", "classes", "coords", "num", "softmax"})
    | _REGION_TRAIN
    | _COMMON_TRAIN,
    "sam": frozenset({"from", "activation"}) | _COMMON_TRAIN,
    "scale_channels": frozenset({"from", "scale_wh", "activation"}) | _COMMON_TRAIN,
    "dropout": frozenset({"probability"}) | _COMMON_TRAIN,
}

# Darknet's short section names (parser.c: string_to_layer_type).
ALIASES = {
    "network": "net",
    "conv": "convolutional",
    "max": "maxpool",
    "dropout": "dropout",
    "upsample": "upsample",
}

DARKNET_ONLY = frozenset(
    {
        "activation",
        "avg",
        "avgpool",
        "batchnorm",
        "contrastive",
        "conv_lstm",
        "conn",
        "connected",
        "cost",
        "crnn",
        "crop",
        "deconv",
        "deconvolutional",
        "detection",
        "empty",
        "gaussian_yolo",
        "gru",
        "history",
        "implicit",
        "implicit_add",
        "implicit_mul",
        "local",
        "local_avg",
        "local_avgpool",
        "lrn",
        "lstm",
        "normalization",
        "reorg",
        "reorg3d",
        "rnn",
        "silence",
        "soft",
        "softmax",
    }
)
"""Layer sections Darknet reads (``parser.c: string_to_layer_type``, lower-cased as detforge
reads section names) and detforge does not run: the model parser refuses them; a cfg
rewrite keeps them as opaque layers (:func:`detforge.models.darknet.cfg.parse_cfg_text`)."""
