"""Built-in demo adapters, one ``zoo_demo_adapter`` answer per task (registered trylast)."""

from zoo.hookspecs import hookimpl


@hookimpl(trylast=True)
def zoo_demo_adapter(task):
    return None
