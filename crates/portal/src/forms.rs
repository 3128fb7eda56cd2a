//! Form fields with their label, and the API's errors for that field beside it
//! (`source.pointer` `/name` goes next to the field `name`).

use std::collections::HashMap;

use maud::{html, Markup};

use crate::api::ApiFailure;

pub type FormData = HashMap<String, String>;

/// A value of the posted form, trimmed ("" when missing).
pub fn value<'a>(form: &'a FormData, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

/// The hidden CSRF field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    pub autocomplete: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Field<'a> {
        Field {
            name,
            label,
            kind: "text",
            value: "",
            required: true,
            hint: None,
            autocomplete: None,
        }
    }
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }
    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    /// What the browser may fill in (`email`, `current-password`, `new-password`, `name`).
    pub fn autocomplete(mut self, what: &'a str) -> Self {
        self.autocomplete = Some(what);
        self
    }
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The label, the input, and the API's errors about it (linked for screen readers).
    pub fn render(&self, failure: Option<&ApiFailure>) -> Markup {
        let errors: Vec<&str> = failure
            .map(|f| f.for_field(self.name).collect())
            .unwrap_or_default();
        let id = format!("f-{}", self.name);
        let error_id = format!("{id}-error");
        html! {
            div.field.invalid[!errors.is_empty()] {
                label for=(id) { (self.label) }
                input id=(id) name=(self.name) type=(self.kind) value=(self.value)
                      autocomplete=[self.autocomplete]
                      required[self.required]
                      aria-invalid=[(!errors.is_empty()).then_some("true")]
                      aria-describedby=[(!errors.is_empty()).then_some(&error_id)];
                @if let Some(hint) = self.hint { small.hint { (hint) } }
                @if !errors.is_empty() {
                    p.field-error id=(error_id) {
                        @for e in &errors { (e) " " }
                    }
                }
            }
        }
    }
}
