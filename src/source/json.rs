//! JSON of any depth: parsed, walked, compared, cloned, written and dropped
//! without recursion, so that no workflow, however deeply its data nests, can
//! hit a recursion limit or overflow a stack on its way into the store and
//! back out.
//!
//! serde_json refuses to parse more than 128 levels ("recursion limit
//! exceeded") and, with that limit lifted, recurses on the stack to parse,
//! print, clone, compare and drop a `Value`. PostgreSQL stores `json` nested
//! far deeper: about 10,000 levels with its default `max_stack_depth` (2 MB),
//! any depth a raised `max_stack_depth` allows (100,000 levels at 120 MB), and
//! n8n writes whatever a node's output or pinned data holds. [`Json`] does all
//! of these with explicit stacks on the heap; the deepest document costs
//! memory in proportion to its size, never stack.
//!
//! What it reads and writes is exactly what serde_json's `Value` reads and
//! writes (without the `preserve_order` and `arbitrary_precision` features):
//! - strings and numbers are decoded by serde_json itself, one token at a
//!   time, so escapes, surrogate pairs, and which numbers are integers and
//!   which floats come out the same, and the same inputs are refused (a lone
//!   surrogate `"\ud800"`, a number out of `f64` range such as `1e400`);
//! - objects keep their members sorted by key (byte order of the UTF-8), each
//!   key once: a key given twice keeps its last value;
//! - [`Json::to_compact`] prints what `serde_json::to_vec` prints for the same
//!   value, [`Json::to_pretty`] what `serde_json::to_vec_pretty` prints.
use serde_json::Number;
use std::fmt;

/// A JSON value (see the module documentation).
#[derive(Default)]
pub enum Json {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object: members sorted by key, each key once.
#[derive(Clone, Default, PartialEq)]
pub struct Object {
    members: Vec<(String, Json)>,
}

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonError {}

// ---------------------------------------------------------------------------
// Dropping, walking, cloning, comparing: no recursion.

impl Drop for Json {
    fn drop(&mut self) {
        // Take the children out (so dropping this value recurses no further),
        // then each child's children, and so on, on a heap stack.
        let mut pending: Vec<Json> = Vec::new();
        take_children(self, &mut pending);
        while let Some(mut v) = pending.pop() {
            take_children(&mut v, &mut pending);
        }
    }
}

fn take_children(v: &mut Json, into: &mut Vec<Json>) {
    match v {
        Json::Array(a) if !a.is_empty() => into.append(a),
        Json::Object(o) if !o.members.is_empty() => {
            into.extend(o.members.drain(..).map(|(_, v)| v))
        }
        _ => {}
    }
}

/// What a walk over a value meets, in document order.
enum Event<'a> {
    /// null, a boolean, a number or a string.
    Scalar(&'a Json),
    StartArray(usize),
    StartObject(usize),
    Key(&'a str),
    End,
}

/// Calls `f` for every event of `root`, depth first, in order.
fn walk<'a>(root: &'a Json, mut f: impl FnMut(Event<'a>)) {
    enum Frame<'a> {
        Array(std::slice::Iter<'a, Json>),
        Object(std::slice::Iter<'a, (String, Json)>),
    }
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut next = Some(root);
    loop {
        if let Some(v) = next.take() {
            match v {
                Json::Array(a) => {
                    f(Event::StartArray(a.len()));
                    stack.push(Frame::Array(a.iter()));
                }
                Json::Object(o) => {
                    f(Event::StartObject(o.members.len()));
                    stack.push(Frame::Object(o.members.iter()));
                }
                scalar => f(Event::Scalar(scalar)),
            }
        }
        let Some(top) = stack.last_mut() else { break };
        match top {
            Frame::Array(it) => match it.next() {
                Some(v) => next = Some(v),
                None => {
                    stack.pop();
                    f(Event::End);
                }
            },
            Frame::Object(it) => match it.next() {
                Some((k, v)) => {
                    f(Event::Key(k));
                    next = Some(v);
                }
                None => {
                    stack.pop();
                    f(Event::End);
                }
            },
        }
    }
}

/// Builds a value from events (parsing, cloning, converting).
#[derive(Default)]
struct Builder {
    open: Vec<Open>,
    done: Option<Json>,
}

enum Open {
    Array(Vec<Json>),
    /// Members so far, and the key whose value comes next.
    Object(Vec<(String, Json)>, Option<String>),
}

impl Builder {
    fn value(&mut self, v: Json) {
        match self.open.last_mut() {
            None => self.done = Some(v),
            Some(Open::Array(a)) => a.push(v),
            Some(Open::Object(m, key)) => m.push((key.take().unwrap_or_default(), v)),
        }
    }

    fn start_array(&mut self, len: usize) {
        self.open
            .push(Open::Array(Vec::with_capacity(len.min(1024))));
    }

    fn start_object(&mut self, len: usize) {
        self.open
            .push(Open::Object(Vec::with_capacity(len.min(1024)), None));
    }

    fn key(&mut self, k: String) {
        if let Some(Open::Object(_, key)) = self.open.last_mut() {
            *key = Some(k);
        }
    }

    fn end(&mut self) {
        let v = match self.open.pop() {
            Some(Open::Array(a)) => Json::Array(a),
            Some(Open::Object(m, _)) => Json::Object(Object::from_members(m)),
            None => return,
        };
        self.value(v);
    }

    fn finish(mut self) -> Json {
        self.done.take().unwrap_or(Json::Null)
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        // A parse that failed half way leaves open containers: close them
        // into one value, whose own drop takes it apart without recursion.
        while !self.open.is_empty() {
            self.end();
        }
    }
}

fn scalar_clone(v: &Json) -> Json {
    match v {
        Json::Null => Json::Null,
        Json::Bool(b) => Json::Bool(*b),
        Json::Number(n) => Json::Number(n.clone()),
        Json::String(s) => Json::String(s.clone()),
        Json::Array(_) | Json::Object(_) => unreachable!("containers are walked"),
    }
}

impl Clone for Json {
    fn clone(&self) -> Json {
        let mut b = Builder::default();
        walk(self, |ev| match ev {
            Event::Scalar(v) => b.value(scalar_clone(v)),
            Event::StartArray(n) => b.start_array(n),
            Event::StartObject(n) => b.start_object(n),
            Event::Key(k) => b.key(k.to_string()),
            Event::End => b.end(),
        });
        b.finish()
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        let mut pairs: Vec<(&Json, &Json)> = vec![(self, other)];
        while let Some((a, b)) = pairs.pop() {
            match (a, b) {
                (Json::Null, Json::Null) => {}
                (Json::Bool(x), Json::Bool(y)) if x == y => {}
                (Json::Number(x), Json::Number(y)) if x == y => {}
                (Json::String(x), Json::String(y)) if x == y => {}
                (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
                    pairs.extend(x.iter().zip(y.iter()));
                }
                (Json::Object(x), Json::Object(y)) if x.members.len() == y.members.len() => {
                    for ((kx, vx), (ky, vy)) in x.members.iter().zip(&y.members) {
                        if kx != ky {
                            return false;
                        }
                        pairs.push((vx, vy));
                    }
                }
                _ => return false,
            }
        }
        true
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        write_object_compact(self, &mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// The compact form (as [`Json::to_compact`]).
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_compact()))
    }
}

// ---------------------------------------------------------------------------
// Access.

impl Json {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Json::Array(_))
    }

    /// An object's member.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// An array's element.
    pub fn get_index(&self, i: usize) -> Option<&Json> {
        self.as_array().and_then(|a| a.get(i))
    }

    /// The object, or the value back when it is not one.
    pub fn into_object(mut self) -> Result<Object, Json> {
        if let Json::Object(o) = &mut self {
            return Ok(std::mem::take(o));
        }
        Err(self)
    }

    /// The array, or the value back when it is not one.
    pub fn into_array(mut self) -> Result<Vec<Json>, Json> {
        if let Json::Array(a) = &mut self {
            return Ok(std::mem::take(a));
        }
        Err(self)
    }

    /// The string, or the value back when it is not one.
    pub fn into_string(mut self) -> Result<String, Json> {
        if let Json::String(s) = &mut self {
            return Ok(std::mem::take(s));
        }
        Err(self)
    }

    /// How deeply containers nest: 0 for a scalar, 1 for `[]` or `[1]`, 2
    /// for `[[1]]`, ...
    pub fn depth(&self) -> usize {
        let mut open = 0usize;
        let mut max = 0usize;
        walk(self, |ev| match ev {
            Event::StartArray(_) | Event::StartObject(_) => {
                open += 1;
                max = max.max(open);
            }
            Event::End => open -= 1,
            _ => {}
        });
        max
    }
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    /// An object of these members (in any order; a key given twice keeps
    /// its last value).
    pub fn from_members(mut members: Vec<(String, Json)>) -> Object {
        let sorted = members
            .windows(2)
            .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes());
        if !sorted {
            // Stable: of equal keys the last given is last; keep it.
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut out: Vec<(String, Json)> = Vec::with_capacity(members.len());
            for m in members {
                match out.last_mut() {
                    Some(last) if last.0 == m.0 => *last = m,
                    _ => out.push(m),
                }
            }
            members = out;
        }
        Object { members }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.members
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.find(key).ok().map(|i| &self.members[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self.find(key) {
            Ok(i) => Some(&mut self.members[i].1),
            Err(_) => None,
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key`; returns its previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Json) -> Option<Json> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.members[i].1, value)),
            Err(i) => {
                self.members.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Json> {
        match self.find(key) {
            Ok(i) => Some(self.members.remove(i).1),
            Err(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Json)> {
        self.members.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.members.iter().map(|(k, _)| k)
    }

    /// The members, in key order.
    pub fn into_members(self) -> Vec<(String, Json)> {
        self.members
    }

    /// The compact form of this object (as [`Json::to_compact`]).
    pub fn to_compact(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_object_compact(self, &mut out);
        out
    }
}

impl From<Object> for Json {
    fn from(o: Object) -> Json {
        Json::Object(o)
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::String(s)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_string())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<Vec<Json>> for Json {
    fn from(a: Vec<Json>) -> Json {
        Json::Array(a)
    }
}

/// A serde_json value (parsed by serde_json, so at most 128 levels deep, or
/// built in code) as a [`Json`].
impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        use serde_json::Value;
        enum Frame<'a> {
            Array(std::slice::Iter<'a, Value>),
            Object(serde_json::map::Iter<'a>),
        }
        let mut b = Builder::default();
        let mut stack: Vec<Frame<'_>> = Vec::new();
        let mut next = Some(v);
        loop {
            if let Some(v) = next.take() {
                match v {
                    Value::Null => b.value(Json::Null),
                    Value::Bool(x) => b.value(Json::Bool(*x)),
                    Value::Number(n) => b.value(Json::Number(n.clone())),
                    Value::String(s) => b.value(Json::String(s.clone())),
                    Value::Array(a) => {
                        b.start_array(a.len());
                        stack.push(Frame::Array(a.iter()));
                    }
                    Value::Object(m) => {
                        b.start_object(m.len());
                        stack.push(Frame::Object(m.iter()));
                    }
                }
            }
            let Some(top) = stack.last_mut() else { break };
            match top {
                Frame::Array(it) => match it.next() {
                    Some(v) => next = Some(v),
                    None => {
                        stack.pop();
                        b.end();
                    }
                },
                Frame::Object(it) => match it.next() {
                    Some((k, v)) => {
                        b.key(k.clone());
                        next = Some(v);
                    }
                    None => {
                        stack.pop();
                        b.end();
                    }
                },
            }
        }
        b.finish()
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Json {
        Json::from(&v)
    }
}

// ---------------------------------------------------------------------------
// Writing.

impl Json {
    /// No whitespace, members in key order, strings escaped as serde_json
    /// escapes them: what `serde_json::to_vec` prints for the same value.
    pub fn to_compact(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_compact(&mut out);
        out
    }

    pub fn write_compact(&self, out: &mut Vec<u8>) {
        // Per open container: is it an object, and is its next entry the first.
        let mut open: Vec<(bool, bool)> = Vec::new();
        let before_value = |open: &mut Vec<(bool, bool)>, out: &mut Vec<u8>| {
            if let Some((is_object, first)) = open.last_mut() {
                if !*is_object {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                }
            }
        };
        walk(self, |ev| match ev {
            Event::Scalar(v) => {
                before_value(&mut open, out);
                write_scalar(v, out);
            }
            Event::StartArray(_) => {
                before_value(&mut open, out);
                out.push(b'[');
                open.push((false, true));
            }
            Event::StartObject(_) => {
                before_value(&mut open, out);
                out.push(b'{');
                open.push((true, true));
            }
            Event::Key(k) => {
                if let Some((_, first)) = open.last_mut() {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                }
                write_str(k, out);
                out.push(b':');
            }
            Event::End => {
                let (is_object, _) = open.pop().unwrap_or((false, true));
                out.push(if is_object { b'}' } else { b']' });
            }
        });
    }

    /// Indented by two spaces, `": "` between a key and its value: what
    /// `serde_json::to_vec_pretty` prints for the same value, down to
    /// [`PRETTY_DEPTH`] levels; containers deeper than that are written
    /// compact, on the line of their key (indenting every level would make
    /// a document nested `n` levels `n²` bytes long).
    pub fn to_pretty(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_pretty_members(None, self, &mut out);
        out
    }
}

/// Containers nested deeper than this are written compact by
/// [`Json::to_pretty`].
pub const PRETTY_DEPTH: usize = 64;

/// Pretty form of `v`, or of an object made of `members` (in that order)
/// when given: the top level of an export keeps n8n's member order.
pub(crate) fn write_pretty_members(members: Option<&[(&str, &Json)]>, v: &Json, out: &mut Vec<u8>) {
    struct Open {
        is_object: bool,
        entries: usize,
        compact: bool,
    }
    let mut open: Vec<Open> = Vec::new();
    let indent = |out: &mut Vec<u8>, n: usize| {
        for _ in 0..n {
            out.extend_from_slice(b"  ");
        }
    };
    // Before an entry (an array's value, an object's key) of the innermost
    // open container.
    let entry = |open: &mut Vec<Open>, out: &mut Vec<u8>| {
        let depth = open.len();
        if let Some(o) = open.last_mut() {
            if o.compact {
                if o.entries > 0 {
                    out.push(b',');
                }
            } else {
                out.extend_from_slice(if o.entries == 0 { b"\n" } else { b",\n" });
                indent(out, depth);
            }
            o.entries += 1;
        }
    };
    let mut ev = |ev: Event<'_>, out: &mut Vec<u8>| {
        let in_array = matches!(open.last(), Some(o) if !o.is_object);
        match ev {
            Event::Scalar(v) => {
                if in_array {
                    entry(&mut open, out);
                }
                write_scalar(v, out);
            }
            Event::StartArray(_) | Event::StartObject(_) => {
                if in_array {
                    entry(&mut open, out);
                }
                let is_object = matches!(ev, Event::StartObject(_));
                out.push(if is_object { b'{' } else { b'[' });
                let compact = open.len() >= PRETTY_DEPTH || open.last().is_some_and(|o| o.compact);
                open.push(Open {
                    is_object,
                    entries: 0,
                    compact,
                });
            }
            Event::Key(k) => {
                entry(&mut open, out);
                write_str(k, out);
                let compact = open.last().is_some_and(|o| o.compact);
                out.extend_from_slice(if compact { b":" } else { b": " });
            }
            Event::End => {
                let Some(o) = open.pop() else { return };
                if o.entries > 0 && !o.compact {
                    out.push(b'\n');
                    indent(out, open.len());
                }
                out.push(if o.is_object { b'}' } else { b']' });
            }
        }
    };
    match members {
        None => walk(v, |e| ev(e, out)),
        Some(members) => {
            ev(Event::StartObject(members.len()), out);
            for (k, v) in members {
                ev(Event::Key(k), out);
                walk(v, |e| ev(e, out));
            }
            ev(Event::End, out);
        }
    }
}

fn write_object_compact(o: &Object, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in o.members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        v.write_compact(out);
    }
    out.push(b'}');
}

fn write_scalar(v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Json::String(s) => write_str(s, out),
        Json::Array(_) | Json::Object(_) => unreachable!("containers are walked"),
    }
}

/// A string between quotes, escaped as serde_json escapes it: `"`, `\`, the
/// short escapes `\b \f \n \r \t`, every other character below U+0020 as
/// `\u00XX` (lowercase hex), nothing else.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

// ---------------------------------------------------------------------------
// Parsing.

impl Json {
    /// Parses a JSON text (one value, whitespace around it allowed).
    pub fn parse(text: &[u8]) -> Result<Json, JsonError> {
        Parser { s: text, i: 0 }.run()
    }

    pub fn parse_str(text: &str) -> Result<Json, JsonError> {
        Json::parse(text.as_bytes())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, at: usize, what: &str) -> JsonError {
        let at = at.min(self.s.len());
        let before = &self.s[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        JsonError {
            message: format!("{what} at line {line} column {column}"),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn run(mut self) -> Result<Json, JsonError> {
        let mut b = Builder::default();
        // Expecting a value (true) or what follows one (false).
        let mut want_value = true;
        loop {
            self.skip_ws();
            if want_value {
                let at = self.i;
                match self.peek() {
                    None => return Err(self.error(at, "EOF while parsing a value")),
                    Some(b'[') => {
                        self.i += 1;
                        b.start_array(0);
                        self.skip_ws();
                        if self.peek() == Some(b']') {
                            self.i += 1;
                            b.end();
                            want_value = false;
                        }
                        continue;
                    }
                    Some(b'{') => {
                        self.i += 1;
                        b.start_object(0);
                        self.skip_ws();
                        if self.peek() == Some(b'}') {
                            self.i += 1;
                            b.end();
                            want_value = false;
                        } else {
                            self.key(&mut b)?;
                        }
                        continue;
                    }
                    Some(b'"') => {
                        let s = self.string()?;
                        b.value(Json::String(s));
                    }
                    Some(b't') => b.value(self.literal(b"true", Json::Bool(true))?),
                    Some(b'f') => b.value(self.literal(b"false", Json::Bool(false))?),
                    Some(b'n') => b.value(self.literal(b"null", Json::Null)?),
                    Some(b'-' | b'0'..=b'9') => b.value(Json::Number(self.number()?)),
                    Some(_) => return Err(self.error(at, "expected value")),
                }
                want_value = false;
                continue;
            }
            // After a value: the end of the text, or the container goes on.
            let in_object = match b.open.last() {
                None => {
                    if self.i < self.s.len() {
                        return Err(self.error(self.i, "trailing characters"));
                    }
                    return Ok(b.finish());
                }
                Some(Open::Object(..)) => true,
                Some(Open::Array(_)) => false,
            };
            let at = self.i;
            match (self.peek(), in_object) {
                (Some(b','), false) => {
                    self.i += 1;
                    want_value = true;
                }
                (Some(b']'), false) => {
                    self.i += 1;
                    b.end();
                }
                (Some(b','), true) => {
                    self.i += 1;
                    self.skip_ws();
                    self.key(&mut b)?;
                    want_value = true;
                }
                (Some(b'}'), true) => {
                    self.i += 1;
                    b.end();
                }
                (None, _) => {
                    let what = if in_object {
                        "EOF while parsing an object"
                    } else {
                        "EOF while parsing a list"
                    };
                    return Err(self.error(at, what));
                }
                (Some(_), false) => return Err(self.error(at, "expected `,` or `]`")),
                (Some(_), true) => return Err(self.error(at, "expected `,` or `}`")),
            }
        }
    }

    /// A member's key and the `:` after it.
    fn key(&mut self, b: &mut Builder) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            let what = if self.peek().is_none() {
                "EOF while parsing an object"
            } else {
                "key must be a string"
            };
            return Err(self.error(self.i, what));
        }
        let k = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error(self.i, "expected `:`"));
        }
        self.i += 1;
        b.key(k);
        Ok(())
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.error(self.i, "expected value"))
        }
    }

    /// A string token, decoded by serde_json (or taken as it is when it has
    /// no escape and no control character, which decodes to itself).
    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.i;
        let mut j = start + 1;
        let mut plain = true;
        loop {
            match self.s.get(j) {
                None => return Err(self.error(self.s.len(), "EOF while parsing a string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    plain = false;
                    j += 2;
                }
                Some(&c) => {
                    if c < 0x20 {
                        plain = false;
                    }
                    j += 1;
                }
            }
        }
        let token = &self.s[start..=j];
        self.i = j + 1;
        if plain {
            if let Ok(s) = std::str::from_utf8(&token[1..token.len() - 1]) {
                return Ok(s.to_string());
            }
        }
        serde_json::from_slice::<String>(token).map_err(|e| {
            let mut e = self.token_error(start, e);
            // serde_json's words for a lone UTF-16 surrogate (`\ud800` not
            // followed by its pair) do not say so.
            if token.windows(3).any(|w| w.eq_ignore_ascii_case(b"\\ud")) {
                e.message = format!(
                    "{} (a string holding an unpaired UTF-16 surrogate?)",
                    e.message
                );
            }
            e
        })
    }

    fn number(&mut self) -> Result<Number, JsonError> {
        let start = self.i;
        let mut j = start;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(j) {
            j += 1;
        }
        self.i = j;
        serde_json::from_slice::<Number>(&self.s[start..j]).map_err(|e| self.token_error(start, e))
    }

    /// serde_json's error about one token, placed in the whole text.
    fn token_error(&self, start: usize, e: serde_json::Error) -> JsonError {
        let m = e.to_string();
        let what = match m.rfind(" at line ") {
            Some(p) => &m[..p],
            None => &m,
        };
        self.error(start, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn nested(depth: usize) -> String {
        let mut s = String::with_capacity(depth * 8);
        for i in 0..depth {
            s.push_str(if i % 2 == 0 { "{\"a\":" } else { "[" });
        }
        s.push('1');
        for i in (0..depth).rev() {
            s.push(if i % 2 == 0 { '}' } else { ']' });
        }
        s
    }

    /// Runs `f` on a thread with a small stack: a recursion over 100,000
    /// levels would overflow it many times over.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_hundred_thousand_levels_parse_print_clone_compare_and_drop_on_a_small_stack() {
        on_small_stack(|| {
            let text = nested(100_000);
            // serde_json stops at 128.
            assert!(serde_json::from_str::<Value>(&text)
                .unwrap_err()
                .to_string()
                .contains("recursion limit exceeded"));
            let v = Json::parse_str(&text).unwrap();
            assert_eq!(v.depth(), 100_000);
            assert_eq!(v.to_compact(), text.as_bytes());
            // Pretty down to PRETTY_DEPTH levels, compact below: linear in size.
            let pretty = v.to_pretty();
            assert!(pretty.len() < text.len() + 4 * PRETTY_DEPTH * PRETTY_DEPTH);
            let back = Json::parse(&pretty).unwrap();
            assert!(back == v);
            let c = v.clone();
            assert!(c == v);
            let mut other = text.clone();
            let one = text.find('1').unwrap();
            other.replace_range(one..one + 1, "2");
            assert!(Json::parse_str(&other).unwrap() != v);
            assert!(format!("{v}").len() == text.len());
            drop((v, c, back));
            // A text that breaks off deep inside is an error, not a crash.
            let cut = &text[..text.len() / 3];
            let e = Json::parse_str(cut).unwrap_err().to_string();
            assert!(e.contains("EOF"), "{e}");
        });
    }

    /// Texts serde_json reads: the same value, printed the same.
    #[test]
    fn reads_and_prints_as_serde_json_does() {
        let texts = [
            r#"{"b":[1,1.5,-0.0,1e21,true,null,"x"],"a":{"é":"\"\\/\u0001\b\f\n\r\t\u007fü\u2028"},"B":18446744073709551615,"":-9007199254740993}"#,
            r#"[1e2, 1E-2, -0, 0.1, 123456789012345678901234567890, -12, 2.5e+3]"#,
            r#"{"dup": 1, "a": 2, "dup": [3]}"#,
            r#" { "z" : { } , "y" : [ ] , "x" : [ [ ] , { } ] } "#,
            r#""\ud83d\ude00 and \u00e9""#,
            r#"{"nested":{"deeper":{"deepest":[{"k":"v"},{"k":null}]}}}"#,
            "\"plain é ü\"",
            "[]",
            "{}",
            "null",
            "true",
            "42",
        ];
        for t in texts {
            let theirs: Value = serde_json::from_str(t).unwrap();
            let mine = Json::parse_str(t).unwrap();
            assert_eq!(
                String::from_utf8(mine.to_compact()).unwrap(),
                serde_json::to_string(&theirs).unwrap(),
                "{t}"
            );
            assert_eq!(
                String::from_utf8(mine.to_pretty()).unwrap(),
                serde_json::to_string_pretty(&theirs).unwrap(),
                "{t}"
            );
            assert!(Json::from(&theirs) == mine, "{t}");
        }
        // Duplicate keys: the last value.
        let v = Json::parse_str(r#"{"dup": 1, "dup": 2}"#).unwrap();
        assert_eq!(v.get("dup").unwrap().to_compact(), b"2");
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for t in [
            "",
            "   ",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "tru",
            "nul",
            "01",
            "1.",
            "-",
            "1e400",
            "\"\\ud800\"",
            "\"\\x\"",
            "\"a\u{1}b\"",
            "\"open",
            "[1",
            "{\"a\":",
            "[] x",
            "\"\\u12\"",
        ] {
            let theirs = serde_json::from_str::<Value>(t).unwrap_err().to_string();
            let e = Json::parse_str(t);
            assert!(e.is_err(), "{t:?} parsed as {:?}", e.unwrap());
            let mine = e.unwrap_err().to_string();
            assert!(mine.contains("line 1 column"), "{t:?}");
            // What is wrong is said as serde_json says it (the position may
            // differ: a token's start rather than where serde_json stopped).
            let what = |m: &str| m[..m.rfind(" at line").unwrap_or(m.len())].to_string();
            if t.starts_with('"') || t.starts_with('1') {
                assert_eq!(what(&mine), what(&theirs), "{t:?}");
            }
        }
        // Not UTF-8 inside a string.
        assert!(Json::parse(b"\"\xff\"").is_err());
        assert!(serde_json::from_slice::<Value>(b"\"\xff\"").is_err());
        let e = Json::parse_str("{\n  \"a\": [1,\n  2 x]}").unwrap_err();
        assert_eq!(e.to_string(), "expected `,` or `]` at line 3 column 5");
    }

    #[test]
    fn objects_stay_sorted_and_unique() {
        let mut o = Object::new();
        assert!(o.insert("b", Json::from("2")).is_none());
        o.insert("a", Json::from("1"));
        o.insert("é", Json::Null);
        o.insert("Z", Json::Bool(true));
        let old = o.insert("a", Json::from("one"));
        assert_eq!(old.unwrap().as_str(), Some("1"));
        assert_eq!(o.keys().collect::<Vec<_>>(), ["Z", "a", "b", "é"]);
        assert_eq!(o.remove("b").unwrap().as_str(), Some("2"));
        assert!(!o.contains_key("b"));
        assert_eq!(
            String::from_utf8(o.to_compact()).unwrap(),
            r#"{"Z":true,"a":"one","é":null}"#
        );
        let v = Json::from(json!({"k": [1, {"x": "y"}]}));
        assert_eq!(
            v.get("k")
                .unwrap()
                .get_index(1)
                .unwrap()
                .get("x")
                .unwrap()
                .as_str(),
            Some("y")
        );
        assert!(v.clone().into_object().is_ok());
        assert!(Json::Null.into_object().is_err());
    }
}
