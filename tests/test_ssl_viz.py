import numpy as np
import pytest
import torch
from PIL import Image

from improved_gan.viz.images import image_grid, save_gif, save_image_grid
from improved_gan.viz.ssl import confusion


def test_grid_layout_and_values():
    x = torch.zeros(5, 1, 4, 3)
    x[1] = 1.0
    g = image_grid(x, nrow=2, padding=1, pad_value=0.5)
    assert g.shape == (3 * 5 + 1, 2 * 4 + 1) and g.dtype == np.uint8
    assert g[1, 1] == 0 and g[1, 5] == 255 and g[0, 0] == 128  # image 0, image 1, border
    assert (g[11:15, 5:8] == 128).all()  # the empty sixth cell stays background
    rgb = image_grid(torch.rand(3, 3, 4, 4), nrow=3)
    assert rgb.shape[2] == 3


def test_save_grid_and_gif(tmp_path):
    paths = [save_image_grid(torch.rand(4, 1, 28, 28), tmp_path / f"g{i}.png", nrow=2, title=f"epoch {i}")
             for i in range(3)]
    with Image.open(paths[0]) as im:
        assert im.size == (2 * 62, 2 * 62 + 16)  # 2x2 cells of 28 + 2-pixel borders, scaled 2x, title band
    gif = save_gif(paths, tmp_path / "a.gif", duration=0.1)
    with Image.open(gif) as im:
        assert im.n_frames == 3
    with pytest.raises(ValueError, match="same size"):
        save_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], tmp_path / "b.gif")


def test_confusion_counts():
    c = confusion(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2]), 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
