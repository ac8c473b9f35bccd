"""Control endpoints under ``/_emulator/`` (no auth): for the demo and for tests that
drive an emulator in another process."""

import json
import re

from .store import Mixin, iso, parse_time


class ControlMixin(Mixin):
    def handle_control(self, method, path, body) -> tuple[int, dict]:
        data = json.loads(body or b"{}")
        with self.lock:
            if method == "GET" and path == "/_emulator/state":
                return 200, {
                    "databases": {
                        db["title"]: {"id": db_id, "data_sources": db["data_sources"]}
                        for db_id, db in self.databases.items()
                    },
                    "requests": dict(self.counts()),
                    "now": iso(self.clock.now()),
                }
            match = re.match(r"^/_emulator/data_sources/([^/]+)/pages$", path)
            if match and method == "GET":
                return 200, {
                    "pages": [
                        {**p, "last_edited_time": iso(p["last_edited_time"])}
                        for p in self.pages_in(match[1], include_trashed=True)
                    ]
                }
            if match and method == "POST":
                if "pages" in data:  # bulk: {"pages": [{property: value}, ...]}
                    return 200, {"ids": [self.human_create(match[1], props) for props in data["pages"]]}
                return 200, {"id": self.human_create(match[1], data.get("properties", {}))}
            if path == "/_emulator/rate-limit" and method == "POST":
                # {"rps", "burst", "per_window", "workspace_per_window", "window", "workspace_window"}
                limits = {
                    k: data[k]
                    for k in ("per_window", "workspace_per_window", "window", "workspace_window")
                    if k in data
                }
                self.set_rate_limit(data.get("rps"), data.get("burst"), **limits)
                return 200, {"rps": data.get("rps"), **limits}
            if path == "/_emulator/throttle" and method == "POST":
                # {"count", "retry_after", "reason", "endpoint", "method"}
                fault = self.throttle_next(**data)
                return 200, {"count": fault.count, "retry_after": fault.retry_after, "reason": fault.reason}
            match = re.match(r"^/_emulator/data_sources/([^/]+)/properties$", path)
            if match and method == "POST":
                # {"add": {name: type}} | {"rename": [old, new]} | {"delete": name} | {"retype": [name, type]}
                source = match[1]
                for name, spec in (data.get("add") or {}).items():
                    self.add_property(source, name, spec)
                if "rename" in data:
                    self.rename_property(source, *data["rename"])
                if "delete" in data:
                    self.delete_property(source, data["delete"])
                if "retype" in data:
                    self.retype_property(source, *data["retype"])
                return 200, {"properties": sorted(self.data_sources[source]["properties"])}
            if path == "/_emulator/reset-counters" and method == "POST":
                self.reset_counters()
                return 200, {}
            if path == "/_emulator/requests" and method == "GET":
                return 200, {
                    "requests": [[log.at, log.method, log.endpoint, log.status] for log in self.requests]
                }
            match = re.match(r"^/_emulator/pages/([^/]+)$", path)
            if match and method in ("POST", "PATCH"):
                self.human_edit(match[1], data.get("properties"), in_trash=data.get("in_trash"))
                return 200, {"id": match[1], "values": self.page_values(match[1])}
            if path == "/_emulator/human-edit" and method == "POST":
                # {"database": "Deals", "title": "Acme", "properties": {...}, "in_trash": bool}
                page_id = self.find_page(data["database"], data["title"])
                self.human_edit(page_id, data.get("properties"), in_trash=data.get("in_trash"))
                return 200, {"id": page_id, "values": self.page_values(page_id)}
            if path == "/_emulator/clock" and method == "POST":
                if "set" in data:
                    self.clock.set(parse_time(data["set"]))
                if "advance" in data:
                    self.clock.advance(float(data["advance"]))
                return 200, {"now": iso(self.clock.now())}
        return 404, {"message": f"No control endpoint {method} {path}"}
