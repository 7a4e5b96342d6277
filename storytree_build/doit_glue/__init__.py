"""The doit glue: task dicts from the manifest, the `run` and `dryrun` commands, the summary reporter.

`dodo.py` imports `project.dodo_namespace`; the commands are registered as doit plugins in pyproject.toml. Inside this
package `import doit` is the doit library (absolute imports), never this package.
"""
