"""Build-time patch: the driver imports the class of a Bolt version when a connection negotiates
that version, not the classes of every version at import (binary only; rules as
driver_patches.py).

`neo4j._sync.io._bolt` imported its four protocol modules (`_bolt3` ... `_bolt6`: some 20
classes, their state enums, and the PackStream and hydration modules of Bolt 5 and 6) only so
that each class registered itself in `Bolt.protocol_handlers`. A run speaks one version: 4.4
servers Bolt 4.4 (`_bolt4`, which imports `_bolt3`), 5.26 Bolt 5.x, calendar releases Bolt 5.x
or 6. In the bundled copy `Bolt.protocol_handlers` is a dict that knows every version the
driver has a class for and the module that defines it (VERSIONS, read from the installed driver
when the build runs), and imports that module when the version is looked up:

* `keys()` and iteration give every version without importing anything, so the handshake offers
  and chooses exactly as before (`_bolt_socket` sorts the keys), and the "does not support"
  error lists them all;
* `get()` and `[]` import the module of the version asked for, then answer from the classes
  registered (each class still registers itself in `__init_subclass__`, whose duplicate check,
  `in`, sees the registered classes only, as before);
* `values()`, `items()`, `len()` and `copy()` see every class: they import every module first.

The async driver is left as it is (the tool never imports it). tests/unit/test_bolt_patches.py
compares the patched driver with the installed one version by version; the end-to-end tests run
the binary against 4.4, 5.26 and 2026.08.
"""

from __future__ import annotations

from driver_patches import Patch

PACKAGE = "neo4j._sync.io._bolt"
BASE = f"{PACKAGE}._base"


def versions() -> dict[tuple[int, int], str]:
    """Each Bolt version the installed sync driver has a class for -> its module's name in
    PACKAGE (importing the driver as it is)."""
    import importlib

    bolt = importlib.import_module(BASE).Bolt
    importlib.import_module(PACKAGE)  # its protocol modules register their classes
    found = {version.version: cls.__module__ for version, cls in bolt.protocol_handlers.items()}
    for module in found.values():
        if module.rpartition(".")[0] != PACKAGE:
            raise SystemExit(f"bolt_patches: a Bolt class is defined in {module}, not in {PACKAGE}")
    return {version: found[version].rpartition(".")[2] for version in sorted(found)}


IMPORTS = Patch(
    module=PACKAGE,
    original='''
from . import (  # noqa - imports needed to register protocol handlers
    _bolt3,
    _bolt4,
    _bolt5,
    _bolt6,
)
from ._base import Bolt
''',
    replacement='''
# neo4j-schema-rollback build patch: the protocol modules are imported when their version is
# looked up in Bolt.protocol_handlers (see _base._LazyProtocolHandlers), not here.
from ._base import Bolt
''',
)

_HANDLERS = '''

class _LazyProtocolHandlers(dict):
    # neo4j-schema-rollback build patch: the class of a Bolt version is imported when that
    # version is looked up; the keys are every version the driver has a class for.
    __slots__ = ()
    _MODULES = {modules!r}

    def _load(self, key):
        name = self._MODULES.get(getattr(key, "version", None))
        if name is not None and not dict.__contains__(self, key):
            import importlib

            importlib.import_module(f"{{__package__}}.{{name}}")

    def _load_all(self):
        import importlib

        for name in dict.fromkeys(self._MODULES.values()):
            importlib.import_module(f"{{__package__}}.{{name}}")

    def get(self, key, default=None):
        self._load(key)
        return dict.get(self, key, default)

    def __missing__(self, key):
        self._load(key)
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def keys(self):
        return [BoltProtocolVersion(*version) for version in self._MODULES]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._MODULES)

    def values(self):
        self._load_all()
        return dict.values(self)

    def items(self):
        self._load_all()
        return dict.items(self)

    def copy(self):
        self._load_all()
        return dict(dict.items(self))


class Bolt(Connection):
'''


def patches(modules: dict[tuple[int, int], str] | None = None) -> tuple[Patch, ...]:
    """The patches, with the version -> module table of the installed driver (or `modules`)."""
    table = versions() if modules is None else modules
    return (
        IMPORTS,
        Patch(module=BASE, original="\n\nclass Bolt(Connection):\n",
              replacement=_HANDLERS.format(modules=table)),
        Patch(module=BASE,
              original='''
    protocol_handlers: t.ClassVar[
        dict[BoltProtocolVersion, type[Bolt]]
    ] = {}
''',
              replacement='''
    protocol_handlers: t.ClassVar[
        dict[BoltProtocolVersion, type[Bolt]]
    ] = _LazyProtocolHandlers()
'''),
    )


MARKERS = {BASE: "_LazyProtocolHandlers"}
