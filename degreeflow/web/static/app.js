// Small helpers only: add rows to list fields, follow an import's progress. Every page works without this.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.add-row");
  if (!button) return;
  const body = button.closest("fieldset").querySelector("tbody");
  const last = body.lastElementChild;
  const copy = last.cloneNode(true);
  const index = body.children.length;
  copy.querySelectorAll("input, select").forEach((input) => {
    input.name = input.name.replace(/\[\d+\]/, `[${index}]`);
    input.value = "";
  });
  copy.querySelectorAll(".field-error").forEach((node) => node.remove());
  body.appendChild(copy);
});

(function followImport() {
  const card = document.getElementById("job");
  if (!card) return;
  const url = card.dataset.status;
  const bar = document.getElementById("job-progress");
  const tick = async () => {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const job = await response.json();
    document.getElementById("job-phase").textContent = job.phase;
    if (job.total) { bar.max = job.total; bar.value = job.done; bar.removeAttribute("data-indeterminate"); }
    document.getElementById("job-count").textContent = `${job.done} / ${job.total || "?"} 行`;
    if (job.finished) { window.location.reload(); return; }
    setTimeout(tick, 700);
  };
  if (document.getElementById("job-phase").textContent.trim() !== "已完成" &&
      document.getElementById("job-phase").textContent.trim() !== "未导入") setTimeout(tick, 300);
})();
