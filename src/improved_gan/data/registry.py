"""Which image datasets the project knows, which files they are made of, and how each file is checked.

Per file the registry records the sha256 of its *decompressed* content (stable whatever gzip wrote:
Debian re-gzips Fashion-MNIST, so the ``.gz`` bytes differ between sources while the IDX bytes do not),
its decompressed size, and the public mirrors it can be downloaded from (the ones torchvision lists).

MNIST and Fashion-MNIST are loaded by :func:`improved_gan.data.images.load_dataset`. CIFAR-10 and SVHN
are registered for users who have them (file names, mirrors, the md5 of the archive as published);
training on them is out of scope here, and for them only the archive's md5 is known.
"""

from __future__ import annotations

import dataclasses

from improved_gan.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One file of a dataset. ``name`` is the file name on the mirrors (usually ``*.gz``)."""

    name: str
    sha256: str | None = None  # of the decompressed content
    size: int | None = None  # decompressed size in bytes
    md5: str | None = None  # of the file as published (used where no sha256 is recorded)

    @property
    def raw_name(self) -> str:
        """The name of the decompressed file (users who gunzipped their copy)."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, FileSpec]  # role ("train-images", ...) -> file
    mirrors: tuple[str, ...]  # base URLs; a file's URL is base + file name
    system_dirs: tuple[str, ...] = ()  # where an operating-system package installs the files
    num_classes: int = 10
    image_shape: tuple[int, ...] = (28, 28)
    loadable: bool = True  # False: registered for completeness, no loader in this project

    def file(self, role: str) -> FileSpec:
        try:
            return self.files[role]
        except KeyError:
            raise ConfigError(f"dataset '{self.name}' has no file '{role}'; it has: "
                              + ", ".join(self.files)) from None


def _idx_files(sha: dict[str, str], sizes: dict[str, int]) -> dict[str, FileSpec]:
    names = {
        "train-images": "train-images-idx3-ubyte.gz",
        "train-labels": "train-labels-idx1-ubyte.gz",
        "test-images": "t10k-images-idx3-ubyte.gz",
        "test-labels": "t10k-labels-idx1-ubyte.gz",
    }
    return {role: FileSpec(name, sha256=sha[role], size=sizes[role]) for role, name in names.items()}


_IDX_SIZES = {"train-images": 47040016, "train-labels": 60008, "test-images": 7840016, "test-labels": 10008}

REGISTRY: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=_idx_files({
            "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }, _IDX_SIZES),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=_idx_files({
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }, _IDX_SIZES),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        # Debian/Ubuntu package dataset-fashion-mnist (apt install dataset-fashion-mnist)
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        files={"archive": FileSpec("cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a")},
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        image_shape=(3, 32, 32),
        loadable=False,
    ),
    "svhn": DatasetSpec(
        name="svhn",
        files={
            "train": FileSpec("train_32x32.mat", md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
            "test": FileSpec("test_32x32.mat", md5="eb5a983be6a315427106f1b164d9cef3"),
            "extra": FileSpec("extra_32x32.mat", md5="a93ce644f1a588dc4d68dda5feec44a7"),
        },
        mirrors=("http://ufldl.stanford.edu/housenumbers/",),
        image_shape=(3, 32, 32),
        loadable=False,
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {', '.join(REGISTRY)}") from None
