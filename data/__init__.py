"""Scene recipes (YAML) and small meshes shipped with meshsim."""
