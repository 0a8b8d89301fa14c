#!/usr/bin/python
"""Ansible module: make a small file hold exactly the given content (idempotent, check and diff aware).

Why not ``copy``/``template``: those stat the file, create a remote temp dir, transfer the
file over SFTP, then run a module and clean up: about seven SSH connections per file. With
ControlMaster off (required for strict host-key checking, see dc/inventory.py) each one is a
full handshake, over a WAN link during a failover. This module takes the content as an
argument and runs pipelined over one connection. Render templates on the controller with
``content: "{{ lookup('template', 'templates/x.j2') }}"``.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: bcp_content
short_description: Write a file's whole content in one round trip
options:
  path: {type: path, required: true, description: file to write}
  content: {type: str, required: true, description: the complete new content}
  parents: {type: bool, default: false, description: create missing parent directories (mode 0755)}
  mode: {type: raw, description: file mode, e.g. "0644"}
  owner: {type: str, description: owner name}
  group: {type: str, description: group name}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True, "no_log": False},
            "parents": {"type": "bool", "default": False},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    new = module.params["content"].encode("utf-8")
    if os.path.isdir(path):
        module.fail_json(msg=f"{path} is a directory")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        if module.check_mode:
            # the directory would be created (by us or an earlier task); in check mode it was not
            module.exit_json(changed=True, path=path)
        if not module.params["parents"]:
            module.fail_json(msg=f"directory of {path} does not exist")
        os.makedirs(directory, mode=0o755)
    try:
        with open(path, "rb") as f:
            old: bytes | None = f.read()
    except FileNotFoundError:
        old = None
    changed = old != new
    diff = {
        "before_header": path,
        "after_header": path,
        "before": "" if old is None else old.decode("utf-8", "replace"),
        "after": new.decode("utf-8"),
    }
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".bcp_content.")
        with os.fdopen(fd, "wb") as f:
            f.write(new)
        module.atomic_move(tmp, path)
    file_args = module.load_file_common_arguments(module.params)
    if old is None and module.check_mode:
        # nothing on disk to compare ownership and mode with
        module.exit_json(changed=True, path=path, diff=diff)
    changed = module.set_fs_attributes_if_different(file_args, changed, diff=None)
    module.exit_json(changed=changed, path=path, diff=diff if changed else {})


if __name__ == "__main__":
    main()
