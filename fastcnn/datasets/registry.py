"""What each dataset is made of: its files, their checksums, and where to get them.

Checksums are the SHA-256 of the files their authors distribute (taken from the
``SHA256SUMS`` files beside the shared copies). Every split names, for its
images and for its labels, one or more interchangeable files in order of
preference; the first is the one fastcnn downloads when none is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError

SPLITS = ("train", "test")
PARTS = ("images", "labels")


@dataclass(frozen=True)
class FileSpec:
    """One file as its authors publish it; ``size`` in bytes, checksums as lowercase hex."""

    name: str
    sha256: str | None
    size: int | None = None
    md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its per-dataset subfolder, mirrors, files and split layout.

    ``splits[split][part]`` lists the names of interchangeable files (IDX ``.gz``
    or ``.npz`` with ``arr_0``) holding that part, preferred first.
    """

    name: str
    title: str
    folder: str
    mirrors: tuple[str, ...]
    files: dict[str, FileSpec]
    splits: dict[str, dict[str, tuple[str, ...]]]
    classes: tuple[str, ...]
    license: str
    homepage: str
    image_shape: tuple[int, int] = (28, 28)
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 60000, "test": 10000})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def urls(self, filename: str) -> list[str]:
        """Every mirror's URL of ``filename``, in the order they are tried."""
        return [mirror + filename for mirror in self.mirrors]


def _idx_splits(extra: dict[str, dict[str, tuple[str, ...]]] | None = None):
    """The standard MNIST-family IDX file names, optionally followed by alternatives."""
    splits = {
        "train": {"images": ("train-images-idx3-ubyte.gz",), "labels": ("train-labels-idx1-ubyte.gz",)},
        "test": {"images": ("t10k-images-idx3-ubyte.gz",), "labels": ("t10k-labels-idx1-ubyte.gz",)},
    }
    for split, parts in (extra or {}).items():
        for part, names in parts.items():
            splits[split][part] += names
    return splits


def _files(*specs: FileSpec) -> dict[str, FileSpec]:
    return {spec.name: spec for spec in specs}


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits",
    folder="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files=_files(
        FileSpec("train-images-idx3-ubyte.gz",
                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422,
                 "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        FileSpec("train-labels-idx1-ubyte.gz",
                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881,
                 "d53e105ee54ea40749a09fcbcd1e9432"),
        FileSpec("t10k-images-idx3-ubyte.gz",
                 "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877,
                 "9fb629c4189551a2d022fa330f9573f3"),
        FileSpec("t10k-labels-idx1-ubyte.gz",
                 "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542,
                 "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    splits=_idx_splits(),
    classes=tuple("0123456789"),
    license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
    homepage="http://yann.lecun.com/exdb/mnist/",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando article images)",
    folder="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    files=_files(
        FileSpec("train-images-idx3-ubyte.gz",
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
                 "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        FileSpec("train-labels-idx1-ubyte.gz",
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
                 "25c81989df183df01b3e8a0aad5dffbe"),
        FileSpec("t10k-images-idx3-ubyte.gz",
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
                 "bef4ecab320f06d8554ea6380940ec79"),
        FileSpec("t10k-labels-idx1-ubyte.gz",
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
                 "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    splits=_idx_splits(),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    license="MIT (Zalando Research)",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
)

KMNIST = DatasetSpec(
    name="kmnist",
    title="Kuzushiji-MNIST (cursive Japanese hiragana)",
    folder="kmnist",
    mirrors=(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    files=_files(
        # MD5s as CODH publishes them; the SHA-256 of the training images were taken
        # from a copy whose MD5 matches CODH's (a183fbc... for the npz below).
        FileSpec("train-images-idx3-ubyte.gz",
                 "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4", 18165135,
                 "bdb82020997e1d708af4cf47b453dcf7"),
        FileSpec("train-labels-idx1-ubyte.gz",
                 "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17", 29497,
                 "e144d726b3acfaa3e44228e80efcd344"),
        FileSpec("t10k-images-idx3-ubyte.gz",
                 "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5", 3041136,
                 "5c965bf0a639b31b8f53240b1b52f4d7"),
        FileSpec("t10k-labels-idx1-ubyte.gz",
                 "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c", 5120,
                 "7320c461ea6c1c855c0b718fb2a4b134"),
        FileSpec("kmnist-train-imgs.npz",
                 "11d69e17c8fd294905864aef177fd10c2185e5a3655f4da03d72ea5a64c17a72", 18384171,
                 "a183fbc01ed9a345513b145673d3d0bb"),
        FileSpec("kmnist-train-labels.npz",
                 "a325c877035602cb9b9ba54f4194a2a1b5f718026a463db5b5e0cdc124c03720", 29700),
        FileSpec("kmnist-test-imgs.npz",
                 "692d824896bec8f3c357ebf7a0fe904ed67ac632ce953d0b58f7fbef7bb27d87", 3079479),
        FileSpec("kmnist-test-labels.npz",
                 "660f13a4705431ea2a6391c41ecbe384cd0d932c595a101ec4f3b8989e785046", 5304),
    ),
    splits=_idx_splits({
        "train": {"images": ("kmnist-train-imgs.npz",), "labels": ("kmnist-train-labels.npz",)},
        "test": {"images": ("kmnist-test-imgs.npz",), "labels": ("kmnist-test-labels.npz",)},
    }),
    # the hiragana of kmnist_classmap.csv (o, ki, su, tsu, na, ha, ma, ya, re, wo)
    classes=("\u304a", "\u304d", "\u3059", "\u3064", "\u306a",
             "\u306f", "\u307e", "\u3084", "\u308c", "\u3092"),
    license="CC BY-SA 4.0 (CODH; cite Clanuwat et al., arXiv:1812.01718)",
    homepage="http://codh.rois.ac.jp/kmnist/",
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST)}
"""Dataset name -> its spec. Tests swap entries (e.g. mirrors) with monkeypatch."""

_ALIASES = {"fashion": "fashion-mnist", "fmnist": "fashion-mnist",
            "kuzushiji-mnist": "kmnist"}


def canonical_name(name: str) -> str:
    """``"Fashion_MNIST"`` -> ``"fashion-mnist"``; InputError for an unknown name."""
    if not isinstance(name, str):
        raise InputError(f"a dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return key


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of dataset ``name`` (aliases and ``_``/``-`` accepted)."""
    return DATASETS[canonical_name(name)]


PREPROCESSING = {"input": "uint8", "scale": 255, "shape": [1, 28, 28]}
"""How every built-in dataset's images reach a model: uint8 pixels divided by 255
(float32 in [0, 1]), one channel of 28x28 (see fastcnn.inputs)."""


def data_info(name: str, train_images: int | None = None) -> dict:
    """What a model trained on dataset ``name`` knows of its data (``model.data_info``,
    saved in the model file): the dataset's name, its class names (indexed by label),
    the preprocessing of its images and, when given, how many training images were used."""
    spec = get_spec(name)
    info = {"dataset": spec.name, "classes": list(spec.classes), "preprocessing": dict(PREPROCESSING)}
    if train_images is not None:
        info["train_images"] = int(train_images)
    return info
