"""Keep a notebook's stored widgets when JupyterLab saves it: a Jupyter server pre-save hook.

JupyterLab (jupyterlab-manager, "saveState" on, as `make setup` sets it) saves only the state of the
widgets that are live in the kernel. A stored widget the student has not re-run (a lecture's slider,
shown from the notebook's saved state) is therefore dropped at the next save, autosave included, and the
notebook then shows "Error displaying widget: model not found" when it is opened again. This hook runs
on the server before every save (`make setup` configures it: ContentsManager.pre_save_hook) and puts
back, from the version on disk, the state of every widget that an output of the saved notebook still
shows and the saved state lacks. It adds nothing else, so a lecture opened and saved unchanged is
written byte for byte as it was (when its stored state holds only widgets that its outputs show:
``reachable_state``; tests/lectures/test_notebook_metadata.py checks the lectures).
"""
import json
import logging
import os
import re

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
_REFERENCE = re.compile(r"IPY_MODEL_([0-9A-Za-z_-]+)")
log = logging.getLogger(__name__)


def _referenced(value):
    """The model ids that ``value`` (JSON) refers to: widget views of outputs and "IPY_MODEL_<id>" strings."""
    if isinstance(value, str):
        return set(_REFERENCE.findall(value))
    if isinstance(value, list):
        return set().union(*map(_referenced, value)) if value else set()
    if isinstance(value, dict):
        found = {value[VIEW]["model_id"]} if isinstance(value.get(VIEW), dict) and "model_id" in value[VIEW] else set()
        return found.union(*map(_referenced, value.values())) if value else found
    return set()


def saved_state(nb):
    """The ``{model_id: model}`` widget state stored in notebook ``nb`` (a dict), empty if none."""
    return ((nb.get("metadata") or {}).get("widgets") or {}).get(STATE, {}).get("state") or {}


def reachable_state(nb, *sources):
    """The models (id -> model) that the outputs of notebook ``nb`` show, directly or through other models,
    looked up in ``nb``'s own saved state and then in each of ``sources`` (states of other versions)."""
    states = [saved_state(nb), *sources]
    found, todo = {}, list(_referenced([c.get("outputs", []) for c in nb.get("cells", [])]))
    while todo:
        model_id = todo.pop()
        model = next((s[model_id] for s in states if model_id in s), None)
        if model_id in found or model is None:
            continue
        found[model_id] = model
        todo.extend(_referenced(model.get("state", {})))
    return found


def restore_missing(nb, previous):
    """Add to notebook ``nb``'s saved widget state the models its outputs show that it lacks and the
    notebook ``previous`` has; return their ids. Models already in ``nb`` are left as they are."""
    state = saved_state(nb)
    missing = {k: v for k, v in reachable_state(nb, saved_state(previous)).items() if k not in state}
    if missing:
        widgets = nb.setdefault("metadata", {}).setdefault("widgets", {})
        stored = widgets.setdefault(STATE, {"version_major": 2, "version_minor": 0})
        stored["state"] = {**state, **missing}
    return sorted(missing)


def keep_widget_state(model, path, contents_manager, **kwargs):
    """Jupyter server pre-save hook (keyword arguments, see ContentsManager.pre_save_hook): restore in the
    notebook being saved the stored widgets that JupyterLab left out (``restore_missing``)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    os_path = os.path.join(contents_manager.root_dir, path.strip("/"))
    if not os.path.isfile(os_path):
        return
    with open(os_path, encoding="utf-8") as file:
        previous = json.load(file)
    restored = restore_missing(model["content"], previous)
    if restored:
        log.info("%s: kept the stored state of %d widget model(s) shown by its outputs", path, len(restored))
