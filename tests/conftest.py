pytest_plugins = ["crmsync.testing.pytest_plugin"]
