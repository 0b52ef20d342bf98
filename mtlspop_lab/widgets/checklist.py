"""ChecklistPanel: run the guide's Testing Checklist against a target and read the evidence.

A thin view over :func:`mtlspop_lab.workshop.checklist.run_checklist`, with a progress
bar fed by its ``on_progress`` callback.
"""

from __future__ import annotations

import ipywidgets as widgets

from .. import _html, flows
from ..errors import ConfigurationError
from ..flows.capabilities import capabilities
from ..workshop import checklist
from ._base import Panel, labelled
from .flow import check_open

LOCAL_APP, LOCAL_SAMI, LOCAL_UAMI, LIVE = "local_app", "local_sami", "local_uami", "live"


class ChecklistPanel(Panel):
    """Pick a target, press Run checklist, read pass/fail and the evidence of each item."""

    title = "Testing checklist"
    intro = ("the guide's pre-production checklist, executed: each item runs against the target "
             "and shows its evidence. Items only a person can judge are marked MANUAL.")

    def __init__(self, authority=None):
        self.authority = authority
        options = []
        if authority is not None:
            options += [("Local authority, confidential client (every item)", LOCAL_APP),
                        ("Local authority, system-assigned identity", LOCAL_SAMI),
                        ("Local authority, user-assigned identity", LOCAL_UAMI)]
        options.append(("Live Azure (this machine's managed identity)", LIVE))
        self.target = widgets.Dropdown(options=options, value=options[0][1], layout=widgets.Layout(width="420px"))
        self.run_button = widgets.Button(description="Run checklist", button_style="primary", icon="check")
        self.progress = widgets.IntProgress(value=0, min=0, max=len(checklist.CHECKS), description="",
                                            layout=widgets.Layout(width="300px", visibility="hidden"))
        self.progress_label = widgets.HTML()
        self.report_box = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.report: checklist.ChecklistReport | None = None
        super().__init__([labelled("Target", self.target),
                          widgets.HBox([self.run_button, self.progress, self.progress_label],
                                       layout=widgets.Layout(align_items="center"))],
                         [self.report_box])
        self.run_button.on_click(self._on_run)

    def _progress(self, done: int, total: int, title: str) -> None:
        self.progress.max, self.progress.value = total, done
        self.progress_label.value = _html.esc(f"{done}/{total} " + ("" if title == "done" else title[:60]))

    def checklist(self) -> checklist.ChecklistReport:
        """What Run does, for the chosen target."""
        target = self.target.value
        if target == LIVE:
            found = capabilities(probe=True, timeout=0.5)
            if not found.imds_reachable:
                raise ConfigurationError(
                    "Live Azure is not reachable from here: no IMDS answered at 169.254.169.254.",
                    cause="This machine is not an Azure VM/App Service with a managed identity (or it is offline).",
                    fix="Run this notebook on an Azure host with a managed identity, or call "
                        "lab.run_checklist(cloud=lab.Cloud.public(), identity=(client_id, tenant_id, cert)) "
                        "for an app registration.", code="live_unreachable")
            return checklist.run_checklist(cloud=None, on_progress=self._progress)
        check_open(self.authority)
        if target == LOCAL_APP:
            return checklist.run_checklist(authority=self.authority, on_progress=self._progress)
        identity = (flows.ManagedIdentityId.system_assigned() if target == LOCAL_SAMI else
                    flows.ManagedIdentityId.user_assigned_client_id(self.authority.directory.user_assigned[0].client_id))
        return checklist.run_checklist(cloud=self.authority.cloud, identity=identity, on_progress=self._progress)

    def _on_run(self, _button=None) -> None:
        self.report_box.value = ""
        self.progress.layout.visibility = "visible"
        self._progress(0, len(checklist.CHECKS), "")
        try:
            report = self.run(self.checklist, busy="Running the checklist…")
        finally:
            self.progress.layout.visibility = "hidden"
        if report is not None:
            self.report = report
            self.report_box.value = report._repr_html_()
