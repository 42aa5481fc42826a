// Turning a completion into the answer that votes and clusters compare. Both functions are deliberately simple and
// documented exactly, so a caller can predict which texts count as the same answer; pass your own `key` or
// `equivalent` for anything smarter.

// Sentence punctuation that does not change an answer: "Paris." and "Paris" are the same answer.
const TRAILING_PUNCTUATION = /[\s.,;:!?\u3002\uff0c\uff01\uff1f\u2026]+$/u;

/**
 * The default answer normalisation: Unicode NFKC, trim, lowercase, every run of whitespace to one space, trailing
 * punctuation (. , ; : ! ? and their CJK forms, the ellipsis) removed. "  The  Answer!\n" -> "the answer".
 */
export function normalizeAnswer(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').replace(TRAILING_PUNCTUATION, '').trim();
}

// "answer is", "answer is:", "answer:", "Answer :" (any case). The word boundary keeps "reanswer:" out.
const ANSWER_MARKER = /\banswer\s*(?:is\s*:?|:)/giu;
// An integer or decimal, optionally negative, optionally with thousands separators: -1,234.5
const NUMBER = /-?\d[\d,]*(?:\.\d+)?/gu;

/**
 * The final answer of a reasoning-style completion, or null if it has none:
 * 1. if the text contains "answer is" / "answer:" (any case), the text after the LAST such marker, up to the end of
 *    that line and the end of its first sentence (a . ! or ? followed by whitespace or the end), trimmed and
 *    without trailing punctuation: "So the answer is: Paris. Done." -> "Paris";
 * 2. else the last number in the text, thousands separators removed: "3 + 4 = 7, so 7." -> "7",
 *    "it costs 1,234.50" -> "1234.50";
 * 3. else null. A marker followed by nothing (the text was cut off) falls through to 2.
 * The result is not lowercased; `finalAnswerKey` gives the normalised form for voting.
 */
export function extractFinalAnswer(text: string): string | null {
  let afterMarker = -1;
  for (const m of text.matchAll(ANSWER_MARKER)) afterMarker = (m.index ?? 0) + m[0].length;
  if (afterMarker >= 0) {
    let span = text.slice(afterMarker);
    const eol = span.search(/[\r\n]/u);
    if (eol >= 0) span = span.slice(0, eol);
    // A sentence ends at punctuation followed by whitespace; "3.5" has no whitespace after its dot.
    const end = span.search(/[.!?](?=\s)/u);
    if (end >= 0) span = span.slice(0, end);
    span = span.replace(TRAILING_PUNCTUATION, '').trim();
    if (span !== '') return span;
  }
  let last: string | null = null;
  for (const m of text.matchAll(NUMBER)) last = m[0];
  if (last === null) return null;
  // The pattern also takes a comma that ends a clause ("7, so"): drop it, then the thousands separators.
  return last.replace(/,+$/u, '').replace(/,/gu, '');
}

/** normalizeAnswer(extractFinalAnswer(text)), or null when the text has no answer: a `key` for `vote`. */
export function finalAnswerKey(text: string): string | null {
  const a = extractFinalAnswer(text);
  return a === null ? null : normalizeAnswer(a);
}
