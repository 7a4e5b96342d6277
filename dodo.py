"""doit entry point. All logic lives in storytree_build; see README for task names and modes."""

from storytree_build.doit_glue.project import dodo_namespace

DOIT_CONFIG, task_storytree, project = dodo_namespace()
