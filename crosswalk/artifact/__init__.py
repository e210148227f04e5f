"""The published artifact (``crosswalk.sqlite`` of a build or a release): its one schema
(:mod:`.schema`), its one writer (:mod:`.writer`) and its one reader (:mod:`.reader`)."""
