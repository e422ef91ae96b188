"""The pretrained scene encoder of unit 5 (lecture 06, a5_transfer_captioning): a small CNN that turns the
64x64 scenes of ``helpers.scenes`` into a 4x4 grid of feature vectors, one per 16x16 cell -- the grid that the
spatial attention of "Show, Attend and Tell" (Xu et al. 2015) reads.

Architecture (6,734 weights in the grid, 7,013 with the pretraining heads; 32 KB on disk)::

    image (N, 3, 64, 64)
      Conv 4x4 stride 4, 3 -> 16, ReLU      (N, 16, 16, 16)
      Conv 2x2 stride 2, 16 -> 32, ReLU     (N, 32, 8, 8)
      Conv 2x2 stride 2, 32 -> 30, ReLU     (N, 30, 4, 4)   the learned channels
      + 2 fixed channels: the cell's row and column, as 4 * (index - 1.5), i.e. -6, -2, 2, 6
    grid (N, 32, 4, 4)

Every kernel equals its stride, so the windows never overlap: grid position (r, c) sees exactly the pixels of
cell (r, c) and nothing else. Such a convolution cannot tell where its window is, but the captions name the
objects in reading order and say "above" or "left of", so the encoder appends the cell's coordinates (as
CoordConv does, Liu et al. 2018): with them the attention can find the next object in reading order. The
learned channels have unit standard deviation on the pretraining images (a constant folded into the last
convolution), so an object's cell differs from an empty one by a vector of norm about 12; the coordinates are
scaled to weigh about as much (with row and column in [-1, 1] the attention captioner learned the reading
order much more slowly: see the script's docstring).

Pretraining (``scripts/pretrain_scene_encoder.py``; recipe, accuracy and time in ``datasets/scene_encoder.json``):
on images of one object in a random cell (``helpers.scenes.single_shapes``), two heads read every cell's
learned channels and name what the cell holds -- shape (circle, square, triangle or empty) and colour (red,
green, blue, yellow or empty). A per-cell objective makes each cell's vector describe its own content, which is
what attention over cells needs; heads on features pooled over the grid gave captioners that were markedly
worse (measured in the script's docstring). The heads are used only for pretraining and ``classify``.

Typical use (the encoder is frozen: compute the features of a split once)::

    from helpers.scene_encoder import grid_features, load_scene_encoder

    encoder = load_scene_encoder()
    features = grid_features(encoder, scenes.images)      # float32 (N, 32, 4, 4)
    cells = features.flatten(2).transpose(1, 2)           # (N, 16, 32), cell (r, c) at position r * 4 + c
"""
import numpy as np
import torch
from torch import nn

from ._validate import integer as _int_arg
from .data import dataset_path

__all__ = ["CHANNELS", "SceneEncoder", "grid_features", "load_scene_encoder"]

IMAGE_SIZE, GRID = 64, 4
LEARNED = 30                 # channels computed by the CNN
CHANNELS = LEARNED + 2       # C of the grid: the learned channels, then row and column
SHAPE_CLASSES = 4            # circle, square, triangle (helpers.scenes.SHAPES order), empty
COLOUR_CLASSES = 5           # red, green, blue, yellow (helpers.scenes.COLOURS order), empty
COORD_SCALE = 4.0            # the coordinate channels are COORD_SCALE * (index - 1.5): -6, -2, 2, 6
WEIGHTS = "scene_encoder.pt"  # in datasets/


class SceneEncoder(nn.Module):
    """Scene image -> 4x4 grid of features; the layers are listed in the module docstring.

    ``forward(images)``: images float32 (N, 3, 64, 64) -> grid float32 (N, 32, 4, 4); channels 0..29 are
    learned, channel 30 holds the cell's row and channel 31 its column, as 4 * (index - 1.5): -6, -2, 2, 6.
    Raises ValueError when ``images`` is not a float tensor (N, 3, 64, 64).
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=4, stride=4), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=2, stride=2), nn.ReLU(),
            nn.Conv2d(32, LEARNED, kernel_size=2, stride=2), nn.ReLU())
        self.shape_head = nn.Linear(LEARNED, SHAPE_CLASSES)
        self.colour_head = nn.Linear(LEARNED, COLOUR_CLASSES)
        offset = COORD_SCALE * (torch.arange(GRID, dtype=torch.float32) - (GRID - 1) / 2)   # -6, -2, 2, 6
        coords = torch.stack(torch.meshgrid(offset, offset, indexing="ij"))                # (2, 4, 4): row, col
        self.register_buffer("coords", coords, persistent=False)

    def forward(self, images):
        _check_images(images)
        learned = self.body(images)
        return torch.cat([learned, self.coords.expand(len(images), -1, -1, -1)], dim=1)

    def cell_logits(self, grid):
        """The pretraining heads on every cell: grid (N, 32, 4, 4) -> (shape logits (N, 16, 4), colour
        logits (N, 16, 5)), cells in reading order, the last class of each meaning "empty"."""
        cells = grid[:, :LEARNED].flatten(2).transpose(1, 2)
        return self.shape_head(cells), self.colour_head(cells)

    def classify(self, images):
        """Shape and colour of one-object images (``single_shapes``), read in the cell least likely to be
        empty under the shape head. images (N, 3, 64, 64) -> (shape ids (N,) indexing SHAPES, colour ids (N,)
        indexing COLOURS), int64."""
        shape, colour = self.cell_logits(self(images))
        rows = torch.arange(len(images))
        cell = shape.log_softmax(2)[:, :, -1].argmin(1)
        return shape[rows, cell, :-1].argmax(1), colour[rows, cell, :-1].argmax(1)


def _check_images(images):
    if not torch.is_tensor(images) or not images.is_floating_point():
        kind = f"a tensor of {images.dtype}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {kind}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must have shape (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(images.shape)}")


def load_scene_encoder():
    """The pretrained encoder shipped in ``datasets/scene_encoder.pt``: on the CPU, in eval mode and frozen
    (every parameter has ``requires_grad=False``; call ``.requires_grad_(True)`` to fine-tune it).
    Raises FileNotFoundError when the weights are missing."""
    encoder = SceneEncoder()
    encoder.load_state_dict(torch.load(dataset_path(WEIGHTS), map_location="cpu", weights_only=True))
    return encoder.eval().requires_grad_(False)


def grid_features(encoder, images, batch_size=256):
    """Grid features of many images, computed in eval mode under ``torch.no_grad()``, in batches.

    Inputs:
    - encoder: a SceneEncoder (or any module mapping (B, 3, 64, 64) -> (B, C, Hg, Wg)); its train/eval mode
      is restored afterwards
    - images: float NumPy array or tensor (N, 3, 64, 64), e.g. ``scenes.images``
    - batch_size: int >= 1, images per forward pass (changes the result only by float rounding)
    Returns: float32 tensor (N, C, Hg, Wg) = (N, 32, 4, 4) for the shipped encoder, on the CPU, without an
    autograd graph. ``features.flatten(2).transpose(1, 2)`` lists the cells in reading order (row * 4 + col).
    Raises ValueError for images that are not (N, 3, 64, 64) floats, or a batch_size that is not an int >= 1.
    """
    if isinstance(images, np.ndarray):
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be a float array (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                             f"got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    _check_images(images)
    batch_size = _int_arg(batch_size, "batch_size", 1)
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():  # one pass even for N = 0, so that the empty result has the right shape
            parts = [encoder(images[i:i + batch_size].to(device, torch.float32)).float().cpu()
                     for i in range(0, max(len(images), 1), batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(parts)
