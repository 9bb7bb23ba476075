"""pytest plugin: placeholder until the regression runner lands."""
