"""The small CNN of unit 5 (lecture 06, a5) and its pretrained checkpoints.

``SmallCNN`` is split into ``body`` (image -> 128-d feature) and ``head`` (dropout + linear
classifier), so that ``model(x) == model.head(model.body(x))``: transfer learning keeps the body
and replaces the head. ``load_pretrained`` loads the weights that scripts/pretrain_source_cnn.py
trained on the source task (Fashion-MNIST classes 0-4, every image rotated by a random angle:
helpers.data.rotated_fashion) and shipped in ``datasets/``.
"""
import json

import torch
from torch import nn

from .data import dataset_path

#: Channels of the three convolutions; the last one is the feature size.
CHANNELS = (32, 64, 128)
#: Length of the feature vector that ``SmallCNN.body`` returns: the 128 maps of the last
#: convolution, each averaged over the whole image (global average pooling).
FEATURE_DIM = CHANNELS[-1]
#: The file that lists the shipped checkpoints (name, steps, source accuracy, ...).
CHECKPOINTS_FILE = "source_cnn.json"


def _conv_block(c_in, c_out, pool):
    layers = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return layers + [nn.MaxPool2d(2)] if pool else layers


class SmallCNN(nn.Module):
    """conv(1->32)-BN-ReLU-maxpool, conv(32->64)-BN-ReLU-maxpool, conv(64->128)-BN-ReLU, global
    average pool -> 128-d feature -> dropout -> linear (93,541 parameters for 5 classes; the
    convolutions have no bias, batch norm supplies it).

    Inputs of forward: x float32 (N, 1, H, W), e.g. (N, 1, 36, 36) for the rotated images of
    helpers.data (any H, W >= 4 works: the pooling adapts)
    Returns: class scores (logits) float32 (N, n_classes)
    Submodules: ``body`` maps x to features (N, 128); ``head`` = Sequential(Dropout, Linear(128,
    n_classes)) maps features to scores.
    Raises ValueError for n_classes not an int >= 2, dropout outside [0, 1), or x not (N, 1, H, W).
    """

    def __init__(self, n_classes=5, dropout=0.2):
        super().__init__()
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        c1, c2, c3 = CHANNELS
        self.body = nn.Sequential(*_conv_block(1, c1, True), *_conv_block(c1, c2, True), *_conv_block(c2, c3, False),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURE_DIM, n_classes))

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        return self.head(self.body(x))


def pretrained_checkpoints():
    """The shipped checkpoints, worst to best source model: a list of dicts with keys "name"
    (for load_pretrained), "file", "steps", "train_images_seen", "epochs", "source_test_accuracy"
    (in %, on rotated_fashion("test", SOURCE_CLASSES, seed=0)), "seed", "train_seconds" and "bytes"
    (read from datasets/source_cnn.json)."""
    return json.loads(dataset_path(CHECKPOINTS_FILE).read_text())["checkpoints"]


def load_pretrained(name="source_cnn_4"):
    """A SmallCNN with the weights of a shipped checkpoint, in eval mode, on the CPU.

    Inputs:
    - name: str, one of the names in pretrained_checkpoints(): "source_cnn_1" (least trained) ...
      "source_cnn_4" (best); the head classifies the 5 source classes (Fashion-MNIST labels 0-4,
      helpers.data.SOURCE_CLASSES) of rotated 36 x 36 images
    Returns: SmallCNN (move it with ``.to(device)``; call ``.train()`` before fine-tuning)
    Raises ValueError for an unknown name. The file is read with torch.load(weights_only=True).
    """
    files = {c["name"]: c["file"] for c in pretrained_checkpoints()}
    if name not in files:
        raise ValueError(f"name must be one of {sorted(files)}, got {name!r}")
    state = torch.load(dataset_path(files[name]), map_location="cpu", weights_only=True)
    model = SmallCNN(n_classes=state["head.1.weight"].shape[0])
    model.load_state_dict(state)
    return model.eval()
