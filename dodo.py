"""doit entry point. All logic lives in storytree_build; see README for task names and modes."""

from storytree_build.doit_tasks import dodo_tasks, doit_config

DOIT_CONFIG = doit_config()


def task_storytree():
    yield from dodo_tasks()
