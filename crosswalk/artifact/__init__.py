"""The published artifact (``crosswalk.sqlite`` of a build or a release): its one schema
(:mod:`.schema`), its one writer (:mod:`.writer`) and its one reader (:mod:`.reader`).

:data:`DEFAULT_OUT` is where ``crosswalk build`` writes when no ``--out`` is given, and
:data:`DEFAULT_DB` the crosswalk that the commands reading a build open by default. It is
not ``build/``: ``pip install .`` writes setuptools' ``build/lib`` there."""

#: The default output directory of ``crosswalk build`` (and ``make build``).
DEFAULT_OUT = "out"
#: The published crosswalk of the default build.
DEFAULT_DB = f"{DEFAULT_OUT}/crosswalk.sqlite"
