//! oslo.policy check strings: parsing, canonical printing and evaluation.
//!
//! The language (as in oslo.policy's `_parser.py` / `_checks.py`):
//! `@` (always), `!` (never), an empty or blank string (always), `rule:<name>`, `role:<name>`,
//! `<field>:<value>` generic checks, `and` / `or` / `not` (case-insensitive), parentheses.
//! `not` binds tightest, then `and`, then `or`. Tokens are separated by whitespace; as in oslo,
//! parentheses are peeled off the start and end of each whitespace-separated word, so
//! `(role:a or role:b)` works without spaces inside the parentheses.
//!
//! Unlike oslo (which logs and turns a bad rule into "never"), malformed input is an error.

use std::collections::BTreeMap;
use std::fmt;

/// The target of a check: `%(key)s` substitutions are looked up here.
pub type Target = BTreeMap<String, String>;

/// Who is asking: the policy-relevant parts of a request context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    pub user_id: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub system_scope: Option<String>,
    pub is_admin: bool,
}

impl Creds {
    /// The credential named `field` as text, the way oslo's `GenericCheck` stringifies it
    /// (`is_admin` is `True`/`False`). `None` when the field is absent or unset.
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "user_id" => Some(self.user_id.clone()),
            "project_id" => self.project_id.clone(),
            "system_scope" => self.system_scope.clone(),
            "is_admin" => Some(python_bool(self.is_admin).to_string()),
            _ => None,
        }
    }
}

/// How deep `rule:` references may nest before evaluation gives up (and denies).
pub const MAX_DEPTH: usize = 32;

/// The right-hand side of a generic check `<field>:<value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `%(key)s`: the target's value for `key`.
    Target(String),
    /// Text mixing literal characters and `%(key)s` substitutions (`%%` is a literal `%`),
    /// stored as written, e.g. `prefix-%(project_id)s`.
    Template(String),
    /// `'text'`, `"text"` or a bare word, compared as text.
    Literal(String),
    /// `True` / `False`, compared with a boolean credential such as `is_admin`.
    Bool(bool),
}

impl Value {
    /// The text to compare, after substitution from the target; `None` when a key is missing.
    fn resolve(&self, target: &Target) -> Option<String> {
        match self {
            Value::Target(key) => target.get(key).cloned(),
            Value::Template(raw) => render(raw, target),
            Value::Literal(text) => Some(text.clone()),
            Value::Bool(b) => Some(python_bool(*b).to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Target(key) => write!(f, "%({key})s"),
            Value::Template(raw) => f.write_str(raw),
            Value::Literal(text) => write!(f, "'{text}'"),
            Value::Bool(b) => f.write_str(python_bool(*b)),
        }
    }
}

/// A parsed check string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `@` or an empty string.
    True,
    /// `!`.
    False,
    /// `rule:<name>`: the named rule; a missing rule is false.
    Rule(String),
    /// `role:<name>`: the caller holds this role (case-insensitive; `%(key)s` substituted).
    Role(String),
    /// `<field>:<value>`: a credential compared with a value.
    Generic {
        field: String,
        value: Value,
    },
    And(Vec<Check>),
    Or(Vec<Check>),
    Not(Box<Check>),
}

/// A check string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

// ---------------------------------------------------------------------------------------------
// Tokenizing

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Check(Check, String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::And => "'and'".into(),
            Token::Or => "'or'".into(),
            Token::Not => "'not'".into(),
            Token::Check(_, text) => format!("'{text}'"),
        }
    }
}

/// Splits on whitespace and peels parentheses off word starts and ends, like oslo's
/// `_parse_tokenize`.
fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let clean = word.trim_start_matches('(');
        for _ in 0..word.len() - clean.len() {
            tokens.push(Token::LParen);
        }
        if clean.is_empty() {
            continue;
        }
        let core = clean.trim_end_matches(')');
        let trail = clean.len() - core.len();
        if !core.is_empty() {
            let token = match core.to_ascii_lowercase().as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Check(parse_check(core)?, core.to_string()),
            };
            tokens.push(token);
        }
        for _ in 0..trail {
            tokens.push(Token::RParen);
        }
    }
    Ok(tokens)
}

fn is_quoted(s: &str) -> bool {
    s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
}

/// One leaf check, like oslo's `_parse_check`.
fn parse_check(token: &str) -> Result<Check, ParseError> {
    match token {
        "@" => return Ok(Check::True),
        "!" => return Ok(Check::False),
        _ => {}
    }
    let Some((kind, rest)) = token.split_once(':') else {
        if is_quoted(token) {
            return Err(ParseError::new(format!(
                "quoted string {token} is not a check (write <field>:{token})"
            )));
        }
        return Err(ParseError::new(format!(
            "'{token}' is not a check: expected '@', '!', 'rule:<name>', 'role:<name>' or \
             '<field>:<value>'"
        )));
    };
    match kind {
        "rule" => {
            if rest.is_empty() {
                return Err(ParseError::new("'rule:' needs a rule name"));
            }
            Ok(Check::Rule(rest.to_string()))
        }
        "role" => {
            if rest.is_empty() {
                return Err(ParseError::new("'role:' needs a role name"));
            }
            validate_template(rest).map_err(|e| ParseError::new(format!("in '{token}': {e}")))?;
            Ok(Check::Role(rest.to_string()))
        }
        "" => Err(ParseError::new(format!(
            "'{token}' has nothing before ':' (expected <field>:<value>)"
        ))),
        field => {
            if rest.is_empty() {
                return Err(ParseError::new(format!(
                    "'{token}' has nothing after ':' (write {field}:'' to compare with empty text)"
                )));
            }
            let value =
                parse_value(rest).map_err(|e| ParseError::new(format!("in '{token}': {e}")))?;
            Ok(Check::Generic {
                field: field.to_string(),
                value,
            })
        }
    }
}

fn parse_value(text: &str) -> Result<Value, String> {
    if is_quoted(text) {
        return Ok(Value::Literal(text[1..text.len() - 1].to_string()));
    }
    match text {
        "True" => return Ok(Value::Bool(true)),
        "False" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if !text.contains('%') {
        return Ok(Value::Literal(text.to_string()));
    }
    validate_template(text)?;
    if let Some(key) = text
        .strip_prefix("%(")
        .and_then(|t| t.strip_suffix(")s"))
        .filter(|k| !k.contains(['(', ')', '%']))
    {
        return Ok(Value::Target(key.to_string()));
    }
    Ok(Value::Template(text.to_string()))
}

/// Checks Python %-format syntax restricted to `%(key)s` and `%%`.
fn validate_template(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('%') {
            rest = after;
        } else if let Some(after) = after.strip_prefix('(') {
            let Some(close) = after.find(')') else {
                return Err("unterminated '%(' substitution (expected %(key)s)".into());
            };
            let key = &after[..close];
            if key.is_empty() || key.contains('(') {
                return Err(format!("bad substitution key '{key}' (expected %(key)s)"));
            }
            let Some(after) = after[close + 1..].strip_prefix('s') else {
                return Err(format!(
                    "substitution %({key}) must end in 's' (expected %({key})s)"
                ));
            };
            rest = after;
        } else {
            return Err(
                "a '%' must start a %(key)s substitution (write %% for a literal %)".into(),
            );
        }
    }
    Ok(())
}

/// Applies `%(key)s` substitutions from the target (`%%` is `%`); `None` when a key is missing.
/// The text must have passed `validate_template`.
fn render(text: &str, target: &Target) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('%') {
            out.push('%');
            rest = after;
        } else {
            let after = after.strip_prefix('(')?;
            let close = after.find(')')?;
            out.push_str(target.get(&after[..close])?);
            rest = after[close + 1..].strip_prefix('s')?;
        }
    }
    out.push_str(rest);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses an oslo.policy check string.
pub fn parse(text: &str) -> Result<Check, ParseError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok(Check::True);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let check = parser.or_expr()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(match token {
            Token::RParen => ParseError::new("unbalanced parentheses: ')' without a matching '('"),
            Token::LParen | Token::Check(..) | Token::Not => ParseError::new(format!(
                "expected 'and' or 'or' before {}",
                token.describe()
            )),
            Token::And | Token::Or => ParseError::new(format!("unexpected {}", token.describe())),
        });
    }
    Ok(check)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn previous(&self) -> Option<&Token> {
        self.pos.checked_sub(1).and_then(|i| self.tokens.get(i))
    }

    fn or_expr(&mut self) -> Result<Check, ParseError> {
        let mut items = vec![self.and_expr()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Check, ParseError> {
        let mut items = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::And(items)
        })
    }

    fn unary(&mut self) -> Result<Check, ParseError> {
        let token = self.peek().cloned();
        match token {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(Check::Not(Box::new(self.unary()?)))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                if self.peek() == Some(&Token::RParen) {
                    return Err(ParseError::new("empty parentheses '()'"));
                }
                let inner = self.or_expr()?;
                match self.peek() {
                    Some(Token::RParen) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    None => Err(ParseError::new(
                        "unbalanced parentheses: '(' is never closed",
                    )),
                    Some(other) => Err(ParseError::new(format!(
                        "expected 'and', 'or' or ')' before {}",
                        other.describe()
                    ))),
                }
            }
            Some(Token::Check(check, _)) => {
                self.pos += 1;
                Ok(check)
            }
            Some(op @ (Token::And | Token::Or)) => Err(match self.previous() {
                None | Some(Token::LParen) => {
                    ParseError::new(format!("{} has no check on its left", op.describe()))
                }
                Some(prev) => ParseError::new(format!(
                    "{} follows {} (doubled operator?)",
                    op.describe(),
                    prev.describe()
                )),
            }),
            Some(Token::RParen) => Err(match self.previous() {
                Some(prev @ (Token::And | Token::Or | Token::Not)) => {
                    ParseError::new(format!("{} has no check on its right", prev.describe()))
                }
                _ => ParseError::new("unbalanced parentheses: ')' without a matching '('"),
            }),
            None => Err(match self.previous() {
                Some(prev) => {
                    ParseError::new(format!("{} has no check on its right", prev.describe()))
                }
                None => ParseError::new("empty check string"),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Printing

impl Check {
    fn write_child(&self, f: &mut fmt::Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// Canonical text: parses back to an equal `Check`. Parentheses are added only where needed
/// (an `or` inside `and`/`or`, an `and` inside `and`, either under `not`), so nested lists keep
/// their shape.
/// `And([])` prints as `@` and `Or([])` as `!` (their meaning); one-element lists print as
/// their element.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::True => f.write_str("@"),
            Check::False => f.write_str("!"),
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(name) => write!(f, "role:{name}"),
            Check::Generic { field, value } => write!(f, "{field}:{value}"),
            Check::Not(inner) => {
                f.write_str("not ")?;
                let parens = matches!(**inner, Check::And(ref v) | Check::Or(ref v) if v.len() > 1);
                inner.write_child(f, parens)
            }
            Check::And(items) | Check::Or(items) => {
                let (sep, empty) = if matches!(self, Check::And(_)) {
                    (" and ", "@")
                } else {
                    (" or ", "!")
                };
                match items.as_slice() {
                    [] => f.write_str(empty),
                    [only] => write!(f, "{only}"),
                    _ => {
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                f.write_str(sep)?;
                            }
                            // `and` inside `or` needs none: `and` binds tighter.
                            let parens = match item {
                                Check::And(v) => v.len() > 1 && matches!(self, Check::And(_)),
                                Check::Or(v) => v.len() > 1,
                                _ => false,
                            };
                            item.write_child(f, parens)?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// oslo's `ast.literal_eval(kind)` for the left side of a generic check: `'Member'`, `True`,
/// `5` are literals compared with the (substituted) right side instead of a credential.
fn field_literal(field: &str) -> Option<String> {
    if is_quoted(field) {
        return Some(field[1..field.len() - 1].to_string());
    }
    match field {
        "True" | "False" | "None" => return Some(field.to_string()),
        _ => {}
    }
    let digits = field.strip_prefix('-').unwrap_or(field);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return field.parse::<i64>().ok().map(|n| n.to_string());
    }
    None
}

impl Check {
    /// Evaluates the check. `rules` looks up named rules for `rule:`; `depth` is the current
    /// `rule:` nesting (start at 0). Past [`MAX_DEPTH`] (a cycle, or absurd nesting) it is false.
    pub fn evaluate<'r>(
        &self,
        target: &Target,
        creds: &Creds,
        rules: &dyn Fn(&str) -> Option<&'r Check>,
        depth: usize,
    ) -> bool {
        match self {
            Check::True => true,
            Check::False => false,
            Check::Rule(name) => {
                if depth >= MAX_DEPTH {
                    log::warn!("policy rule:{name} nests deeper than {MAX_DEPTH} rules; denying");
                    return false;
                }
                match rules(name) {
                    Some(rule) => rule.evaluate(target, creds, rules, depth + 1),
                    None => false,
                }
            }
            Check::Role(name) => match render(name, target) {
                Some(role) => creds
                    .roles
                    .iter()
                    .any(|r| r.to_lowercase() == role.to_lowercase()),
                None => false,
            },
            Check::Generic { field, value } => {
                let Some(wanted) = value.resolve(target) else {
                    return false;
                };
                if let Some(literal) = field_literal(field) {
                    return literal == wanted;
                }
                if field == "roles" {
                    return creds.roles.contains(&wanted);
                }
                creds.field(field).is_some_and(|have| have == wanted)
            }
            Check::And(items) => items
                .iter()
                .all(|c| c.evaluate(target, creds, rules, depth)),
            Check::Or(items) => items
                .iter()
                .any(|c| c.evaluate(target, creds, rules, depth)),
            Check::Not(inner) => !inner.evaluate(target, creds, rules, depth),
        }
    }

    /// The names of the rules this check refers to with `rule:`.
    pub fn referenced_rules(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_rules(&mut out);
        out
    }

    fn collect_rules<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Check::Rule(name) => out.push(name),
            Check::And(items) | Check::Or(items) => {
                for item in items {
                    item.collect_rules(out);
                }
            }
            Check::Not(inner) => inner.collect_rules(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Check {
        Check::Role(name.into())
    }
    fn rule(name: &str) -> Check {
        Check::Rule(name.into())
    }
    fn generic(field: &str, value: Value) -> Check {
        Check::Generic {
            field: field.into(),
            value,
        }
    }

    #[test]
    fn parses_every_form() {
        let target = |k: &str| Value::Target(k.into());
        let lit = |s: &str| Value::Literal(s.into());
        let table: Vec<(&str, Check)> = vec![
            ("@", Check::True),
            ("!", Check::False),
            ("", Check::True),
            ("   \t\n ", Check::True),
            ("rule:context_is_admin", rule("context_is_admin")),
            (
                "rule:os_compute_api:os-instance-actions:list",
                rule("os_compute_api:os-instance-actions:list"),
            ),
            ("role:admin", role("admin")),
            ("role:%(role_name)s", role("%(role_name)s")),
            (
                "project_id:%(project_id)s",
                generic("project_id", target("project_id")),
            ),
            ("user_id:%(user_id)s", generic("user_id", target("user_id"))),
            ("project_id:'abc'", generic("project_id", lit("abc"))),
            ("project_id:\"abc\"", generic("project_id", lit("abc"))),
            ("project_id:''", generic("project_id", lit(""))),
            ("project_id:abc", generic("project_id", lit("abc"))),
            ("project_id:42", generic("project_id", lit("42"))),
            ("project_id:'True'", generic("project_id", lit("True"))),
            ("is_admin:True", generic("is_admin", Value::Bool(true))),
            ("is_admin:False", generic("is_admin", Value::Bool(false))),
            (
                "project_id:p-%(project_id)s",
                generic("project_id", Value::Template("p-%(project_id)s".into())),
            ),
            (
                "'Member':%(role.name)s",
                generic("'Member'", target("role.name")),
            ),
            (
                "role:reader and project_id:%(project_id)s",
                Check::And(vec![
                    role("reader"),
                    generic("project_id", target("project_id")),
                ]),
            ),
            (
                "rule:a or rule:b or rule:c",
                Check::Or(vec![rule("a"), rule("b"), rule("c")]),
            ),
            ("role:a AND role:b", Check::And(vec![role("a"), role("b")])),
            ("role:a Or role:b", Check::Or(vec![role("a"), role("b")])),
            ("NOT role:a", Check::Not(Box::new(role("a")))),
            (
                "not not role:a",
                Check::Not(Box::new(Check::Not(Box::new(role("a"))))),
            ),
            (
                "role:a or role:b and role:c",
                Check::Or(vec![role("a"), Check::And(vec![role("b"), role("c")])]),
            ),
            (
                "role:a and role:b or role:c",
                Check::Or(vec![Check::And(vec![role("a"), role("b")]), role("c")]),
            ),
            (
                "not role:a and role:b",
                Check::And(vec![Check::Not(Box::new(role("a"))), role("b")]),
            ),
            (
                "(role:a or role:b) and role:c",
                Check::And(vec![Check::Or(vec![role("a"), role("b")]), role("c")]),
            ),
            (
                "not (role:a or role:b)",
                Check::Not(Box::new(Check::Or(vec![role("a"), role("b")]))),
            ),
            ("((role:a))", role("a")),
            ("( role:a )", role("a")),
            (
                "role:a and (role:b or (role:c and not role:d))",
                Check::And(vec![
                    role("a"),
                    Check::Or(vec![
                        role("b"),
                        Check::And(vec![role("c"), Check::Not(Box::new(role("d")))]),
                    ]),
                ]),
            ),
            (
                "(role:a or role:b) or role:c",
                Check::Or(vec![Check::Or(vec![role("a"), role("b")]), role("c")]),
            ),
            (
                "  role:a\tor\nrole:b  ",
                Check::Or(vec![role("a"), role("b")]),
            ),
            ("@ and !", Check::And(vec![Check::True, Check::False])),
            ("rule:notes", rule("notes")),
        ];
        for (text, want) in table {
            let got = parse(text).unwrap_or_else(|e| panic!("{text:?} failed: {e}"));
            assert_eq!(got, want, "parsing {text:?}");
            let again = parse(&got.to_string()).unwrap();
            assert_eq!(again, got, "round trip of {text:?} via {got}");
        }
    }

    #[test]
    fn rejects_malformed_with_clear_messages() {
        let table = [
            ("(role:a", "'(' is never closed"),
            ("role:a)", "')' without a matching '('"),
            ("((role:a) or role:b", "'(' is never closed"),
            ("role:a or", "'or' has no check on its right"),
            ("and role:a", "'and' has no check on its left"),
            ("role:a and or role:b", "'or' follows 'and'"),
            ("role:a or or role:b", "'or' follows 'or'"),
            ("not", "'not' has no check on its right"),
            ("role:a and not", "'not' has no check on its right"),
            ("(role:a and)", "'and' has no check on its right"),
            ("(or role:a)", "'or' has no check on its left"),
            ("()", "empty parentheses"),
            ("role:a role:b", "expected 'and' or 'or' before 'role:b'"),
            ("(role:a) (role:b)", "expected 'and' or 'or' before '('"),
            (
                "(role:a role:b)",
                "expected 'and', 'or' or ')' before 'role:b'",
            ),
            ("admin", "'admin' is not a check"),
            ("role:a or admin", "'admin' is not a check"),
            ("'quoted'", "quoted string 'quoted' is not a check"),
            ("rule:", "'rule:' needs a rule name"),
            ("role:", "'role:' needs a role name"),
            (":x", "nothing before ':'"),
            ("project_id:", "nothing after ':'"),
            ("project_id:%(project_id)x", "must end in 's'"),
            // As in oslo, the trailing ')' is peeled off the word as a parenthesis.
            ("project_id:%(project_id)", "unterminated '%('"),
            ("project_id:%(project_id", "unterminated '%('"),
            ("project_id:100%", "write %% for a literal %"),
            ("project_id:%()s", "bad substitution key"),
            ("role:%(x", "unterminated '%('"),
        ];
        for (text, want) in table {
            match parse(text) {
                Ok(c) => panic!("{text:?} parsed as {c:?}"),
                Err(e) => assert!(
                    e.message.contains(want),
                    "{text:?}: message {:?} lacks {want:?}",
                    e.message
                ),
            }
        }
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            (
                "role:a and (role:b or role:c)",
                "role:a and (role:b or role:c)",
            ),
            (
                "(role:a and role:b) or role:c",
                "role:a and role:b or role:c",
            ),
            ("not (role:a and role:b)", "not (role:a and role:b)"),
            ("project_id:abc", "project_id:'abc'"),
            ("project_id:\"a'b\"", "project_id:'a'b'"),
            ("is_admin:True", "is_admin:True"),
            ("", "@"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap().to_string(), want);
        }
        assert_eq!(Check::And(vec![]).to_string(), "@");
        assert_eq!(Check::Or(vec![]).to_string(), "!");
        assert_eq!(Check::Or(vec![role("x")]).to_string(), "role:x");
    }

    fn creds(project: Option<&str>, roles: &[&str]) -> Creds {
        Creds {
            user_id: "u1".into(),
            project_id: project.map(str::to_string),
            roles: roles.iter().map(std::string::ToString::to_string).collect(),
            system_scope: None,
            is_admin: false,
        }
    }

    fn eval(text: &str, target: &[(&str, &str)], creds: &Creds) -> bool {
        let target: Target = target
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(text)
            .unwrap()
            .evaluate(&target, creds, &|_: &str| None, 0)
    }

    #[test]
    fn evaluates_leaves_like_oslo() {
        let c = creds(Some("p1"), &["Reader", "member"]);
        let t = [
            ("project_id", "p1"),
            ("user_id", "u1"),
            ("role_name", "MEMBER"),
        ];
        let cases = [
            ("@", true),
            ("!", false),
            ("", true),
            ("role:reader", true),
            ("role:READER", true),
            ("role:admin", false),
            ("role:%(role_name)s", true),
            ("role:%(missing)s", false),
            ("project_id:%(project_id)s", true),
            ("user_id:%(user_id)s", true),
            ("user_id:%(project_id)s", false),
            ("project_id:%(missing)s", false),
            ("project_id:'p1'", true),
            ("project_id:\"p1\"", true),
            ("project_id:p1", true),
            ("project_id:p2", false),
            ("project_id:p%(missing)s", false),
            ("project_id:%%p1", false),
            ("domain_id:%(project_id)s", false),
            ("system_scope:all", false),
            ("is_admin:True", false),
            ("is_admin:False", true),
            ("is_admin:'False'", true),
            ("roles:member", true),
            ("roles:Member", false),
            ("'p1':%(project_id)s", true),
            ("'p2':%(project_id)s", false),
            ("True:True", true),
            ("role:reader and project_id:%(project_id)s", true),
            ("role:reader and not project_id:%(project_id)s", false),
            ("role:admin or role:member", true),
        ];
        for (text, want) in cases {
            assert_eq!(eval(text, &t, &c), want, "{text}");
        }
        let no_project = creds(None, &["reader"]);
        assert!(!eval("project_id:%(project_id)s", &t, &no_project));
        let mut system = creds(None, &["admin"]);
        system.system_scope = Some("all".into());
        system.is_admin = true;
        assert!(eval("system_scope:all", &t, &system));
        assert!(eval("is_admin:True", &t, &system));
        let mut templated = creds(Some("x-p1"), &[]);
        templated.user_id = "50%".into();
        assert!(eval("project_id:x-%(project_id)s", &t, &templated));
        assert!(eval("user_id:50%%", &t, &templated));
    }

    #[test]
    fn rules_resolve_and_cycles_are_false() {
        let rules: BTreeMap<String, Check> = [
            ("yes", "@"),
            ("admin", "role:admin"),
            ("indirect", "rule:admin"),
            ("loop_a", "rule:loop_b"),
            ("loop_b", "rule:loop_a"),
            ("self", "rule:self or role:admin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), parse(v).unwrap()))
        .collect();
        let lookup = |name: &str| rules.get(name);
        let t = Target::new();
        let admin = creds(Some("p"), &["admin"]);
        let nobody = creds(Some("p"), &[]);
        let ev = |text: &str, c: &Creds| parse(text).unwrap().evaluate(&t, c, &lookup, 0);
        assert!(ev("rule:yes", &nobody));
        assert!(ev("rule:indirect", &admin));
        assert!(!ev("rule:indirect", &nobody));
        assert!(!ev("rule:missing", &admin));
        assert!(ev("not rule:missing", &admin));
        assert!(!ev("rule:loop_a", &admin));
        // The depth limit cuts the recursive branch off; the other branch still counts.
        assert!(ev("rule:self", &admin));
        assert!(!ev("rule:self", &nobody));
    }

    #[test]
    fn referenced_rules_lists_rule_names() {
        let c = parse("rule:a or (role:x and not rule:b)").unwrap();
        assert_eq!(c.referenced_rules(), vec!["a", "b"]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[a-z_][a-z0-9_:.-]{0,12}"
                .prop_filter("keyword", |s| !matches!(s.as_str(), "and" | "or" | "not"))
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                "[a-z_.]{1,8}".prop_map(Value::Target),
                "[A-Za-z0-9_:.'\"()@!-]{0,10}".prop_map(Value::Literal),
                any::<bool>().prop_map(Value::Bool),
                ("[a-z]{1,4}", "[a-z_]{1,6}")
                    .prop_map(|(p, k)| Value::Template(format!("{p}-%({k})s%%"))),
            ]
        }

        fn leaf() -> impl Strategy<Value = Check> {
            prop_oneof![
                Just(Check::True),
                Just(Check::False),
                name().prop_map(Check::Rule),
                name().prop_map(Check::Role),
                "[a-z][a-z_.]{0,10}"
                    .prop_filter("special kinds", |f| !matches!(
                        f.as_str(),
                        "rule" | "role" | "and" | "or" | "not"
                    ))
                    .prop_flat_map(|field| value().prop_map(move |value| Check::Generic {
                        field: field.clone(),
                        value
                    })),
            ]
        }

        fn tree() -> impl Strategy<Value = Check> {
            leaf().prop_recursive(5, 48, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Check::And),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Check::Or),
                    inner.prop_map(|c| Check::Not(Box::new(c))),
                ]
            })
        }

        /// Lists of fewer than two items have no text of their own: replace them by meaning.
        fn normalize(c: Check) -> Check {
            let is_and = matches!(c, Check::And(_));
            match c {
                Check::And(items) | Check::Or(items) if items.len() < 2 => {
                    match items.into_iter().next() {
                        Some(only) => normalize(only),
                        None if is_and => Check::True,
                        None => Check::False,
                    }
                }
                Check::And(items) => Check::And(items.into_iter().map(normalize).collect()),
                Check::Or(items) => Check::Or(items.into_iter().map(normalize).collect()),
                Check::Not(inner) => Check::Not(Box::new(normalize(*inner))),
                other => other,
            }
        }

        /// Truth-table model: leaves are `role:rN`.
        #[derive(Debug, Clone)]
        enum Model {
            Leaf(usize),
            And(Vec<Model>),
            Or(Vec<Model>),
            Not(Box<Model>),
        }

        impl Model {
            fn truth(&self, held: &[bool]) -> bool {
                match self {
                    Model::Leaf(i) => held[*i],
                    Model::And(v) => v.iter().all(|m| m.truth(held)),
                    Model::Or(v) => v.iter().any(|m| m.truth(held)),
                    Model::Not(m) => !m.truth(held),
                }
            }
            fn text(&self) -> String {
                match self {
                    Model::Leaf(i) => format!("role:r{i}"),
                    Model::And(v) => format!(
                        "({})",
                        v.iter().map(Model::text).collect::<Vec<_>>().join(" and ")
                    ),
                    Model::Or(v) => format!(
                        "({})",
                        v.iter().map(Model::text).collect::<Vec<_>>().join(" or ")
                    ),
                    Model::Not(m) => format!("not {}", m.text()),
                }
            }
        }

        fn model() -> impl Strategy<Value = Model> {
            (0usize..6)
                .prop_map(Model::Leaf)
                .prop_recursive(5, 40, 4, |inner| {
                    prop_oneof![
                        prop::collection::vec(inner.clone(), 2..4).prop_map(Model::And),
                        prop::collection::vec(inner.clone(), 2..4).prop_map(Model::Or),
                        inner.prop_map(|m| Model::Not(Box::new(m))),
                    ]
                })
        }

        proptest! {
            #[test]
            fn display_round_trips(c in tree()) {
                let c = normalize(c);
                let text = c.to_string();
                let back = parse(&text);
                prop_assert_eq!(back, Ok(c), "text: {}", text);
            }

            #[test]
            fn display_round_trips_unnormalized_meaning(c in tree(), roles in prop::collection::vec("[a-z_]{1,3}", 0..4)) {
                // Even without normalizing, the printed text means the same thing.
                let creds = Creds { user_id: "u".into(), project_id: Some("p".into()), roles, ..Creds::default() };
                let target: Target = [("project_id".to_string(), "p".to_string())].into();
                let back = parse(&c.to_string()).unwrap();
                let none = |_: &str| None;
                prop_assert_eq!(back.evaluate(&target, &creds, &none, 0), c.evaluate(&target, &creds, &none, 0));
            }

            #[test]
            fn boolean_operators_match_truth_table(m in model(), held in prop::collection::vec(any::<bool>(), 6), upper in any::<bool>()) {
                let roles: Vec<String> = held.iter().enumerate().filter(|(_, h)| **h)
                    .map(|(i, _)| if upper { format!("R{i}") } else { format!("r{i}") }).collect();
                let creds = Creds { user_id: "u".into(), roles, ..Creds::default() };
                let check = parse(&m.text()).unwrap();
                prop_assert_eq!(check.evaluate(&Target::new(), &creds, &|_: &str| None, 0), m.truth(&held), "text: {}", m.text());
            }
        }
    }
}
