"""The state diagram of a case type as SVG, generated from its definition, with the current state highlighted.

Layout: states in columns by their distance from the initial state (breadth first), stacked in each column;
forward steps are straight arrows, steps that go back (return, dispute) are arcs under the nodes.
"""

from __future__ import annotations

from collections import deque
from html import escape

from workflow import ProcessDefinition

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 150, 46, 70, 34, 20


def _layers(defn: ProcessDefinition) -> dict[str, int]:
    depth = {defn.initial: 0}
    queue = deque([defn.initial])
    while queue:
        state = queue.popleft()
        for step in defn.steps:
            if step.source == state and step.dest not in depth:
                depth[step.dest] = depth[state] + 1
                queue.append(step.dest)
    for state in defn.states:  # unreachable states (should not exist; the definition check says so)
        depth.setdefault(state, max(depth.values()) + 1)
    # An end reached from several columns (作废 from a draft and from the unit's check) stands right of all of
    # them, so each way in is a forward arrow.
    for state in defn.terminal:
        sources = [depth[s.source] for s in defn.steps if s.dest == state and s.source != state]
        if sources and state in depth:
            depth[state] = max(depth[state], max(sources) + 1)
    return depth


def svg(defn: ProcessDefinition, current: str | None = None) -> str:
    depth = _layers(defn)
    columns: dict[int, list[str]] = {}
    # Ends at the top of their column: the arcs of steps going back leave the working states below them freely.
    for state in sorted(defn.states, key=lambda name: name not in defn.terminal):
        columns.setdefault(depth[state], []).append(state)
    pos: dict[str, tuple[float, float]] = {}
    tallest = max(len(states) for states in columns.values())
    for col, states in columns.items():
        offset = (tallest - len(states)) * (NODE_H + ROW_GAP) / 2
        for row, state in enumerate(states):
            pos[state] = (PAD + col * (NODE_W + COL_GAP), PAD + 20 + offset + row * (NODE_H + ROW_GAP))
    width = PAD * 2 + len(columns) * (NODE_W + COL_GAP) - COL_GAP
    back_edges = sum(1 for s in defn.steps if depth[s.dest] <= depth[s.source])
    height = (
        PAD * 2 + 20 + tallest * (NODE_H + ROW_GAP) - ROW_GAP + (30 + 14 * back_edges if back_edges else 0)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(defn.label)}流程图" '
        'class="state-diagram" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    seen: set[tuple[str, str, str]] = set()
    back_index = 0
    bottom = PAD + 20 + tallest * (NODE_H + ROW_GAP) - ROW_GAP
    for step in defn.steps:
        key = (step.source, step.trigger, step.dest)
        if key in seen:
            continue
        seen.add(key)
        (x1, y1), (x2, y2) = pos[step.source], pos[step.dest]
        label = escape(step.trigger + ("（自动）" if step.automatic else ""))
        dash = ' stroke-dasharray="4 3"' if step.automatic else ""
        if depth[step.dest] > depth[step.source]:
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            parts.append(f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{ex:.0f}" y2="{ey:.0f}" stroke="#555"{dash} '
                         'marker-end="url(#arrow)"/>')  # fmt: skip
            parts.append(f'<text x="{(sx + ex) / 2:.0f}" y="{(sy + ey) / 2 - 5:.0f}" text-anchor="middle" '
                         f'fill="#333">{label}</text>')  # fmt: skip
        else:
            back_index += 1
            sx, ex = x1 + NODE_W / 2, x2 + NODE_W / 2
            depth_y = bottom + 16 + 14 * back_index
            parts.append(f'<path d="M{sx:.0f},{y1 + NODE_H:.0f} C{sx:.0f},{depth_y:.0f} {ex:.0f},{depth_y:.0f} '
                         f'{ex:.0f},{y2 + NODE_H:.0f}" fill="none" stroke="#8a5a00"{dash} marker-end="url(#arrow)"/>')  # fmt: skip
            parts.append(f'<text x="{(sx + ex) / 2:.0f}" y="{depth_y - 10:.0f}" text-anchor="middle" '
                         f'fill="#8a5a00">{label}</text>')  # fmt: skip
    for state, label in defn.states.items():
        x, y = pos[state]
        is_current = state == current
        terminal = state in defn.terminal
        fill = "#b71c1c" if is_current else ("#eef2f7" if not terminal else "#e8f5e9")
        color = "#fff" if is_current else "#222"
        stroke = "#7f0000" if is_current else "#6b7c93"
        width_px = 3 if is_current else (2 if terminal else 1)
        current_attr = ' data-current="true"' if is_current else ""
        parts.append(
            f'<g class="state"{current_attr} data-state="{escape(state)}">'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width_px}"/>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" fill="{color}" '
            f'font-weight="bold">{escape(label[:12])}</text>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 35:.0f}" text-anchor="middle" fill="{color}" '
            f'font-size="10">{escape(state)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
