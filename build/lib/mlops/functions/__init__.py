"""The Lambda handlers, one folder each (``<name>/handler.py``): thin adapters from an event to one domain
function. Each is its function's code asset; the package ships them as data (``mlops.functions``), so a project that
installs the platform deploys the very same files."""
