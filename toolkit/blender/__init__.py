"""The Blender side (runs inside Blender's Python, imports bpy): shared by the Blender add-on
(`blender_addon/`) and by the .blend/FBX writers (`toolkit.export.blend`, which runs
`export_scene` in a Python that has bpy).

    lipsync.py       an Animation onto shape keys, the head, the sound strip, the frame range
    keyframes.py     Actions, slots and channelbags (Blender 4.2 to 5.x), NLA, the add-on's own curves
    export_scene.py  a model + an animation JSON -> a .blend or .fbx file
"""
