// Quality reviews (docs/console.md#quality-reviews): a supervisor or admin looking at a closed
// conversation opens the review dialog from the chat header. It shows the reviews made already
// (score, each criterion, comments) and the form: each criterion of the rubric in force as a
// radio group on its scale (1..N, or Yes/No; "N/A" where allowed) with an optional comment, and
// an overall comment. Saving POSTs a new review, or PUTs the reviewer's own (against the rubric
// version it was made with); the author may delete it. REST only:
// docs/api.md#quality-reviews. The score itself is computed by the server.

import { openDialog } from "./dialog.js";
import { h, problemText, when } from "./dom.js";

const NA = "na";
let styled = false;

// The dialog's stylesheet, linked once (keeps index.html untouched).
function style() {
  if (styled) return;
  styled = true;
  document.head.append(h("link", { rel: "stylesheet", href: "quality.css" }));
}

// What the radio group of a criterion offers: [value, label] pairs.
function choices(criterion) {
  const values =
    criterion.scale === "yes_no"
      ? [
          [1, "Yes"],
          [0, "No"],
        ]
      : Array.from({ length: criterion.points }, (_, i) => [i + 1, String(i + 1)]);
  if (criterion.allow_na) values.push([NA, "N/A"]);
  return values;
}

function scoreText(score) {
  return score === null || score === undefined ? "—" : score.toFixed(score % 1 ? 2 : 0) + " %";
}

function valueText(s) {
  if (s.value === null) return "N/A";
  if (s.scale === "yes_no") return s.value ? "Yes" : "No";
  return `${s.value} / ${s.points}`;
}

function reviewView(review, mine, onEdit, onDelete) {
  return h(
    "article",
    { class: "qa-review", "data-test": "qa-review", "data-review-id": review.id },
    h(
      "header",
      {},
      h("strong", { class: "qa-score", "data-test": "qa-review-score" }, scoreText(review.score)),
      h("span", {}, ` ${review.agent_name || "Agent"} · reviewed by ${review.reviewer_name || "someone"} · ${when(review.updated_at)}`),
      review.rubric_version ? h("span", { class: "muted" }, ` · rubric v${review.rubric_version}`) : null,
      mine ? h("button", { class: "ghost small", "data-test": "qa-edit", onclick: onEdit }, "Edit") : null,
      onDelete ? h("button", { class: "ghost small danger", "data-test": "qa-delete", onclick: onDelete }, "Delete") : null,
    ),
    h(
      "ul",
      { class: "qa-scores" },
      review.scores.map((s) =>
        h(
          "li",
          { "data-test": "qa-review-criterion", "data-key": s.key },
          h("span", { class: "qa-label" }, s.label),
          h("span", { class: "qa-value" }, valueText(s)),
          s.comment ? h("div", { class: "muted qa-comment" }, s.comment) : null,
        ),
      ),
    ),
    review.comment ? h("p", { class: "qa-overall", "data-test": "qa-review-comment" }, review.comment) : null,
  );
}

// The form of one review: `criteria` as the rubric (or the edited review's scores) give them.
function reviewForm(criteria, existing) {
  const given = new Map((existing?.scores || []).map((s) => [s.key, s]));
  const groups = criteria.map((c, i) => {
    const name = `qa-${c.key}`;
    const prior = given.get(c.key);
    const current = prior ? (prior.value === null ? NA : prior.value) : undefined;
    const comment = h("input", {
      type: "text",
      class: "qa-criterion-comment",
      "data-test": "qa-comment",
      "data-key": c.key,
      placeholder: "Comment (optional)",
      maxlength: "2000",
      "aria-label": `Comment on ${c.label}`,
      value: prior?.comment || "",
    });
    const radios = choices(c).map(([value, label], j) => {
      const id = `${name}-${j}`;
      return h(
        "label",
        { class: "qa-choice", for: id },
        h("input", { type: "radio", id, name, value: String(value), "data-test": "qa-choice", "data-key": c.key, checked: current !== undefined && String(current) === String(value) }),
        label,
      );
    });
    return {
      criterion: c,
      comment,
      el: h(
        "fieldset",
        { class: "qa-criterion", "data-test": "qa-criterion", "data-key": c.key },
        h("legend", {}, `${i + 1}. ${c.label}`, h("span", { class: "muted" }, ` (weight ${c.weight})`)),
        c.description ? h("p", { class: "muted qa-description" }, c.description) : null,
        h("div", { class: "qa-choices", role: "radiogroup", "aria-label": c.label }, radios),
        comment,
      ),
    };
  });
  const overall = h("textarea", { id: "qa-overall", "data-test": "qa-overall", rows: "3", maxlength: "5000", placeholder: "Overall comment (optional)" }, existing?.comment || "");
  const error = h("p", { class: "form-error", role: "alert", "data-test": "qa-error" });
  const form = h("form", { class: "stack qa-form", "data-test": "qa-form" }, groups.map((g) => g.el), h("label", { for: "qa-overall" }, "Overall comment"), overall, error);

  // The body to send, or null (with the error shown) when a criterion has no answer.
  function read() {
    const scores = [];
    for (const g of groups) {
      const picked = form.querySelector(`input[name="qa-${g.criterion.key}"]:checked`);
      if (!picked) {
        error.textContent = `Score “${g.criterion.label}” first (or mark it N/A where allowed).`;
        form.querySelector(`input[name="qa-${g.criterion.key}"]`)?.focus();
        return null;
      }
      scores.push({ key: g.criterion.key, value: picked.value === NA ? null : Number(picked.value), comment: g.comment.value.trim() || null });
    }
    error.textContent = "";
    return { scores, comment: overall.value.trim() || null };
  }
  return { form, read, error };
}

// Open the review dialog of conversation `id` (`label`: who it was with).
export async function openReview(ctx, id, label) {
  style();
  let rubric;
  let reviews;
  try {
    [rubric, { reviews }] = await Promise.all([ctx.api("GET", "/quality/rubric"), ctx.api("GET", `/conversations/${id}/reviews`)]);
  } catch (err) {
    ctx.toast("Reviews unavailable: " + problemText(err));
    return;
  }
  const body = h("div", { class: "qa" });
  const save = h("button", { class: "primary", "data-test": "qa-save", type: "submit" }, "Save review");
  const dlg = openDialog({
    title: "Quality review — " + label,
    test: "qa-dialog",
    wide: true,
    body: [body],
    actions: [h("button", { class: "ghost", onclick: () => dlg.close() }, "Close"), save],
  });
  let editing = null; // the reviewer's own review when they edit it
  let current = null;

  const draw = () => {
    const mine = reviews.find((r) => r.reviewer_id === ctx.me.id) || null;
    const canDelete = (r) => r.reviewer_id === ctx.me.id || ctx.me.role === "admin";
    const criteria = editing ? editing.scores : rubric.criteria;
    current = mine && !editing ? null : reviewForm(criteria, editing);
    save.hidden = !current;
    save.textContent = editing ? "Save changes" : "Save review";
    const parts = [
      h(
        "section",
        { class: "qa-list", "data-test": "qa-list" },
        h("h3", {}, reviews.length ? `Reviews (${reviews.length})` : "No reviews yet"),
        reviews.map((r) =>
          reviewView(
            r,
            r === mine && !editing,
            () => ((editing = r), draw()),
            canDelete(r) ? () => remove(r) : null,
          ),
        ),
      ),
    ];
    if (current) parts.push(h("section", {}, h("h3", {}, editing ? "Edit your review" : "Your review"), current.form));
    body.replaceChildren(...parts);
    current?.form.addEventListener("submit", submit);
  };

  async function remove(review) {
    if (!window.confirm("Delete this review?")) return;
    try {
      await ctx.api("DELETE", `/quality/reviews/${review.id}`);
      reviews = reviews.filter((r) => r.id !== review.id);
      if (editing?.id === review.id) editing = null;
      draw();
    } catch (err) {
      ctx.toast("Not deleted: " + problemText(err));
    }
  }

  async function submit(e) {
    e?.preventDefault();
    const sent = current?.read();
    if (!sent) return;
    save.disabled = true;
    try {
      if (editing) {
        const changed = await ctx.api("PUT", `/quality/reviews/${editing.id}`, sent);
        reviews = reviews.map((r) => (r.id === changed.id ? changed : r));
      } else {
        reviews = [await ctx.api("POST", `/conversations/${id}/reviews`, sent), ...reviews];
      }
      editing = null;
      draw();
      ctx.toast("Review saved.");
    } catch (err) {
      const problems = err?.problem?.errors;
      current.error.textContent = problems?.length ? problems.map((p) => `${p.field}: ${p.problem}`).join("; ") : problemText(err);
    } finally {
      save.disabled = false;
    }
  }

  save.addEventListener("click", submit);
  draw();
}
