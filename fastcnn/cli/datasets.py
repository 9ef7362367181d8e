"""List the datasets, where their files are and whether they are complete; verify checksums.

Examples:
  fastcnn datasets                  # = list: every dataset, its files and status
  fastcnn datasets list kmnist
  fastcnn datasets where mnist      # just the folder, for scripts
  fastcnn datasets verify           # re-hash every present file (exit 1 if one fails)

Files are looked up in $FASTCNN_DATA/<dataset>/ (default ~/.cache/fastcnn).
"""

from __future__ import annotations

HELP = "list the datasets, where their files are, whether complete; verify checksums"

ACTIONS = ("list", "verify", "where")

_SPLIT_WORDS = {"train": "training", "test": "test"}


def add_arguments(parser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="list",
                        help="list (default), verify checksums, or print where the files are")
    parser.add_argument("name", nargs="?", default=None,
                        help="one dataset (mnist, fashion-mnist, kmnist); default: all")


def _describe(items, word: str) -> list[str]:
    grouped = {}
    for item in items:
        split, part = item.split(" ", 1)
        grouped.setdefault(_SPLIT_WORDS.get(split, split), []).append(part)
    return [f"{split} {' and '.join(parts)} {word}" for split, parts in grouped.items()]


def describe_missing(state) -> str:
    """'training images missing' (or '... and test labels missing') for a DatasetStatus,
    then the damaged ones ('test labels damaged')."""
    return "; ".join(_describe(state.missing, "missing") +
                     _describe(getattr(state, "damaged", ()), "damaged (see the file list)"))


def completeness(state) -> str:
    """'complete' or 'incomplete: training images missing'."""
    return "complete" if state.complete else f"incomplete: {describe_missing(state)}"


def _size(size) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000


def _file_line(item) -> str:
    if not item.exists:
        return f"    -        {item.name}  (not present)"
    if item.verified is True:
        check = "ok"
    elif item.verified is False:
        check = "FAILED"
    elif item.sha256 is None:
        check = "no sum"
    else:
        check = "present"
    line = f"    {check:<8} {item.name}  {_size(item.size)}"
    return line + (f"  ({item.problem})" if item.problem else "")


def _print_dataset(state, info) -> None:
    print(f"{info.name}: {info.title}")
    print(f"  folder:  {state.folder}")
    print(f"  status:  {completeness(state)}")
    print(f"  classes: {len(info.classes)}; {info.sizes['train']:,} training / "
          f"{info.sizes['test']:,} test images; license {info.license}")
    print("  files:")
    for item in state.files:
        print(_file_line(item))


def run(args) -> int:
    from ..datasets import data_home, dataset_info, get_spec, status, verify

    names = [get_spec(args.name).name] if args.name else [info.name for info in dataset_info()]
    if args.action == "where":
        for name in names:
            folder = status(name).folder
            print(folder if args.name else f"{name}\t{folder}")
        return 0
    print(f"data folder: {data_home()} (set FASTCNN_DATA to change it)")
    failed = []
    for name in names:
        state = verify(name) if args.action == "verify" else status(name)
        print()
        _print_dataset(state, dataset_info(name))
        failed += [f"{state.name}/{item.name}" for item in state.files if item.verified is False]
    if args.action == "verify":
        print()
        if failed:
            print(f"checksum FAILED for {', '.join(failed)}: delete and re-download them")
            return 1
        print("every present file with a published checksum matches it")
    return 0
