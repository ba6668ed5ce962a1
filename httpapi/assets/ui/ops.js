// ops.js: the operations view (filled in by the operations slice).
import { el } from "./api.js";

export function mount(root) {
  root.append(el("section", {}, el("h2", {}, "Operations")));
  return {};
}
