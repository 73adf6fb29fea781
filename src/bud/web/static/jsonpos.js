// JSON with positions: where a syntax error is (line, column) and where each path's value
// sits in the text, so an error the server reports at `steps[1].depends_on` or
// `filter.environment.$gt` can be shown on its line of the editor.

class JsonSyntaxError extends Error {
  constructor(message, offset) {
    super(message);
    this.offset = offset;
  }
}

function describe(ch) {
  if (ch === undefined) return "the end of the text";
  if (ch === "\n") return "a line break";
  return `'${ch}'`;
}

class Parser {
  constructor(text) {
    this.text = text;
    this.i = 0;
    this.positions = new Map();
  }

  fail(message, at = this.i) {
    throw new JsonSyntaxError(message, at);
  }

  ws() {
    const t = this.text;
    while (this.i < t.length && " \t\n\r".includes(t[this.i])) this.i += 1;
  }

  value(path) {
    this.ws();
    const start = this.i;
    const ch = this.text[this.i];
    let value;
    if (ch === "{") value = this.object(path);
    else if (ch === "[") value = this.array(path);
    else if (ch === '"') value = this.string();
    else if (ch === "-" || (ch >= "0" && ch <= "9")) value = this.number();
    else if (this.text.startsWith("true", this.i)) { this.i += 4; value = true; }
    else if (this.text.startsWith("false", this.i)) { this.i += 5; value = false; }
    else if (this.text.startsWith("null", this.i)) { this.i += 4; value = null; }
    else if (ch === "'") this.fail("strings need double quotes (\"), not single quotes");
    else this.fail(`expected a value, found ${describe(ch)}`);
    if (!this.positions.has(path)) this.positions.set(path, { start, end: this.i });
    return value;
  }

  object(path) {
    const out = {};
    this.i += 1;
    this.ws();
    if (this.text[this.i] === "}") { this.i += 1; return out; }
    for (;;) {
      this.ws();
      const keyStart = this.i;
      if (this.text[this.i] !== '"') {
        const found = this.text[this.i];
        if (found === "}") this.fail("no comma is allowed after the last property");
        this.fail(`expected a property name in double quotes, found ${describe(found)}`);
      }
      const key = this.string();
      const child = path ? `${path}.${key}` : key;
      this.ws();
      if (this.text[this.i] !== ":") this.fail(`expected ':' after the property name "${key}"`);
      this.i += 1;
      out[key] = this.value(child);
      this.positions.set(child, { start: keyStart, end: this.i });
      this.ws();
      const ch = this.text[this.i];
      if (ch === ",") { this.i += 1; continue; }
      if (ch === "}") { this.i += 1; return out; }
      this.fail(`expected ',' or '}' after the value of "${key}", found ${describe(ch)}`);
    }
  }

  array(path) {
    const out = [];
    this.i += 1;
    this.ws();
    if (this.text[this.i] === "]") { this.i += 1; return out; }
    for (;;) {
      this.ws();
      if (this.text[this.i] === "]") this.fail("no comma is allowed after the last item");
      out.push(this.value(`${path}[${out.length}]`));
      this.ws();
      const ch = this.text[this.i];
      if (ch === ",") { this.i += 1; continue; }
      if (ch === "]") { this.i += 1; return out; }
      this.fail(`expected ',' or ']' after an item, found ${describe(ch)}`);
    }
  }

  string() {
    const start = this.i;
    this.i += 1;
    const t = this.text;
    while (this.i < t.length) {
      const ch = t[this.i];
      if (ch === '"') {
        this.i += 1;
        return JSON.parse(t.slice(start, this.i));
      }
      if (ch === "\\") {
        const esc = t[this.i + 1];
        if (esc === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.i + 2, this.i + 6))) {
            this.fail("\\u must be followed by four hex digits");
          }
          this.i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) {
          this.i += 2;
        } else {
          this.fail(`invalid escape \\${esc === undefined ? "" : esc} in a string`);
        }
        continue;
      }
      if (ch < " ") this.fail("a string cannot contain a raw line break or control character");
      this.i += 1;
    }
    this.fail("unterminated string: a closing \" is missing", start);
    return "";
  }

  number() {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.i));
    if (!m) this.fail("invalid number");
    this.i += m[0].length;
    return Number(m[0]);
  }

  parse() {
    const value = this.value("");
    this.ws();
    if (this.i < this.text.length) {
      this.fail(`unexpected ${describe(this.text[this.i])} after the end of the JSON value`);
    }
    return value;
  }
}

export function lineCol(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return { line, column };
}

/**
 * Parse `text`. Answers {ok: true, value, positions, empty} or
 * {ok: false, message, offset, line, column}. JSON.parse decides validity; the small
 * parser above only adds locations and friendlier words.
 */
export function parseJson(text) {
  if (!text.trim()) return { ok: true, empty: true, value: undefined, positions: new Map() };
  let value;
  try {
    value = JSON.parse(text);
  } catch (native) {
    try {
      new Parser(text).parse();
    } catch (err) {
      if (err instanceof JsonSyntaxError) {
        const { line, column } = lineCol(text, err.offset);
        return { ok: false, message: `line ${line}, column ${column}: ${err.message}`,
          offset: err.offset, line, column };
      }
    }
    return { ok: false, message: native.message, offset: 0, line: 1, column: 1 };
  }
  let positions = new Map();
  try {
    const p = new Parser(text);
    p.parse();
    positions = p.positions;
  } catch {
    /* positions are a nicety */
  }
  return { ok: true, empty: false, value, positions };
}

/** The server's path without step labels: `steps[1] (deploy).params` → `steps[1].params`. */
export function normalizePath(path) {
  return String(path || "").replace(/\s+\([^)]*\)/g, "");
}

/** Where `path` (or its nearest existing parent) is in the text, as {start, end, line}. */
export function locate(text, positions, path) {
  let p = normalizePath(path);
  while (p) {
    const at = positions.get(p);
    if (at) return { ...at, ...lineCol(text, at.start) };
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    p = cut > 0 ? p.slice(0, cut) : "";
  }
  return null;
}
