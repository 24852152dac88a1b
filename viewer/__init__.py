"""Browser viewer, video rendering and exports for meshsim trajectory and rollout files (docs/viewer.md).

    meshsim.viewer.server.serve(path)                     # `meshsim view`: stdlib HTTP server + three.js page
    meshsim.viewer.render.render_video(path, "out.mp4")   # `meshsim render`: headless Chromium, frame by frame
    meshsim.viewer.export.export_trajectory(path, "vtkhdf")  # `meshsim export`: ParaView series, OBJ/PLY/GLB
    meshsim.viewer.source.FrameSource(path)               # the per-frame data all of them draw

Submodules are imported on use so that `import meshsim.viewer` stays cheap.
"""
