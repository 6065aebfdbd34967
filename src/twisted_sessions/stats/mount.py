"""
Mounting a resource in front of an application's root: how ``/stats`` is served beside it.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import Resource


class Mounted(Resource):
    """
    A root resource with extra children in front of it (``/stats`` over the application).
    """

    def __init__(self, root: Any, children: dict[bytes, Resource]) -> None:
        super().__init__()
        self._root, self._mounted = root, children
        # Read once: this runs for every request the application serves.
        self._root_is_leaf = bool(getattr(root, "isLeaf", False))

    def getChildWithDefault(self, path: bytes, request: Any) -> Any:
        mounted = self._mounted.get(path)
        if mounted is not None:
            return mounted
        if self._root_is_leaf:
            # A leaf root renders every path itself: undo the step traversal just took.
            request.postpath.insert(0, request.prepath.pop())
            return self._root
        return self._root.getChildWithDefault(path, request)

    def render(self, request: Any) -> Any:
        return self._root.render(request)
