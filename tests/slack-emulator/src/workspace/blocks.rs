//! Slack's rules for the Block Kit blocks flamethread sends, enforced the way Slack enforces them:
//! the message is refused with `invalid_blocks` and a JSON pointer to the offending field. The
//! limits are Slack's published ones (block reference pages); where the sources disagree the
//! stricter one is used, so a reply the emulator accepts is one Slack accepts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{File, SlackError};

/// A header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// A section's or a text object's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// A section's fields, and each field's text.
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
/// A context block's elements.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// An actions block's elements.
pub const MAX_ACTION_ELEMENTS: usize = 25;
/// A button's text, `action_id`, `value` and `url`.
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_ACTION_ID: usize = 255;
pub const MAX_BUTTON_VALUE: usize = 2000;
pub const MAX_URL: usize = 3000;
/// A select's placeholder, options, and each option's value.
pub const MAX_PLACEHOLDER: usize = 150;
pub const MAX_OPTIONS: usize = 100;
pub const MAX_OPTION_VALUE: usize = 150;
/// Any `block_id`.
pub const MAX_BLOCK_ID: usize = 255;
/// An image's alt text and title.
pub const MAX_ALT_TEXT: usize = 2000;
/// Data visualization: per message, title, series, points and labels.
pub const MAX_CHARTS: usize = 2;
pub const MAX_CHART_TITLE: usize = 50;
pub const MAX_CHART_SERIES: usize = 6;
pub const MAX_CHART_POINTS: usize = 20;
pub const MAX_CHART_LABEL: usize = 20;
/// The image types an image block may show from a Slack file.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif"];

/// Checks each block of a message. `file` looks a workspace file up by id (for `slack_file`).
pub fn validate<'a>(
    blocks: &[Value],
    file: &dyn Fn(&str) -> Option<&'a File>,
) -> Result<(), SlackError> {
    let mut charts = 0;
    for (index, block) in blocks.iter().enumerate() {
        let at = format!("/blocks/{index}");
        if let Some(id) = block.get("block_id") {
            check_len(id, MAX_BLOCK_ID, &format!("{at}/block_id"))?;
        }
        match block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "header" => {
                let text = required(block, "text", &at)?;
                text_object(text, MAX_HEADER_TEXT, true, &format!("{at}/text"))?;
            }
            "section" => section(block, &at)?,
            "context" => context(block, &at)?,
            "actions" => actions(block, &at)?,
            "image" => image(block, &at, file)?,
            "data_visualization" => {
                charts += 1;
                if charts > MAX_CHARTS {
                    return Err(error(
                        format!("no more than {MAX_CHARTS} data_visualization blocks allowed"),
                        &at,
                    ));
                }
                data_visualization(block, &at)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn error(message: String, at: &str) -> SlackError {
    SlackError::invalid_blocks(format!("[ERROR] {message} [json-pointer:{at}]"))
}

fn required<'v>(value: &'v Value, field: &str, at: &str) -> Result<&'v Value, SlackError> {
    value
        .get(field)
        .filter(|value| !value.is_null())
        .ok_or_else(|| error(format!("missing required field: {field}"), at))
}

fn string<'v>(value: &'v Value, at: &str) -> Result<&'v str, SlackError> {
    value
        .as_str()
        .ok_or_else(|| error("must be a string".to_owned(), at))
}

fn check_len(value: &Value, max: usize, at: &str) -> Result<(), SlackError> {
    let text = string(value, at)?;
    if text.chars().count() > max {
        return Err(error(
            format!("must be less than {} characters", max + 1),
            at,
        ));
    }
    Ok(())
}

fn non_empty(value: &Value, max: usize, at: &str) -> Result<(), SlackError> {
    check_len(value, max, at)?;
    if string(value, at)?.is_empty() {
        return Err(error("must be more than 0 characters".to_owned(), at));
    }
    Ok(())
}

/// A text object: `plain_text` (or `mrkdwn` unless `plain_only`) with text of 1..=`max`.
fn text_object(text: &Value, max: usize, plain_only: bool, at: &str) -> Result<(), SlackError> {
    let kind = string(required(text, "type", at)?, &format!("{at}/type"))?;
    match kind {
        "plain_text" => {}
        "mrkdwn" if !plain_only => {}
        _ => {
            let expected = if plain_only {
                "plain_text"
            } else {
                "plain_text, mrkdwn"
            };
            return Err(error(
                format!("must be one of: {expected}"),
                &format!("{at}/type"),
            ));
        }
    }
    non_empty(required(text, "text", at)?, max, &format!("{at}/text"))
}

fn array<'v>(value: &'v Value, at: &str) -> Result<&'v Vec<Value>, SlackError> {
    value
        .as_array()
        .ok_or_else(|| error("must be an array".to_owned(), at))
}

fn count(items: &[Value], min: usize, max: usize, at: &str) -> Result<(), SlackError> {
    if items.len() < min {
        return Err(error(format!("must provide at least {min} items"), at));
    }
    if items.len() > max {
        return Err(error(format!("no more than {max} items allowed"), at));
    }
    Ok(())
}

fn section(block: &Value, at: &str) -> Result<(), SlackError> {
    let text = block.get("text").filter(|text| !text.is_null());
    let fields = block.get("fields").filter(|fields| !fields.is_null());
    if text.is_none() && fields.is_none() {
        return Err(error("must provide either text or fields".to_owned(), at));
    }
    if let Some(text) = text {
        text_object(text, MAX_SECTION_TEXT, false, &format!("{at}/text"))?;
    }
    if let Some(fields) = fields {
        let at = format!("{at}/fields");
        let fields = array(fields, &at)?;
        count(fields, 1, MAX_FIELDS, &at)?;
        for (index, field) in fields.iter().enumerate() {
            text_object(field, MAX_FIELD_TEXT, false, &format!("{at}/{index}"))?;
        }
    }
    if let Some(accessory) = block
        .get("accessory")
        .filter(|accessory| !accessory.is_null())
    {
        let at = format!("{at}/accessory");
        if accessory.get("type").and_then(Value::as_str) == Some("image") {
            // An image is the one accessory that is not interactive.
            non_empty(required(accessory, "alt_text", &at)?, MAX_ALT_TEXT, &at)?;
        } else {
            interactive(accessory, &at, &mut BTreeSet::new())?;
        }
    }
    Ok(())
}

fn context(block: &Value, at: &str) -> Result<(), SlackError> {
    let at = format!("{at}/elements");
    let elements = array(required(block, "elements", &at)?, &at)?;
    count(elements, 1, MAX_CONTEXT_ELEMENTS, &at)?;
    for (index, element) in elements.iter().enumerate() {
        let at = format!("{at}/{index}");
        match element.get("type").and_then(Value::as_str) {
            Some("image") => {
                non_empty(
                    required(element, "image_url", &at)?,
                    MAX_URL,
                    &format!("{at}/image_url"),
                )?;
                non_empty(
                    required(element, "alt_text", &at)?,
                    MAX_ALT_TEXT,
                    &format!("{at}/alt_text"),
                )?;
            }
            _ => text_object(element, MAX_SECTION_TEXT, false, &at)?,
        }
    }
    Ok(())
}

fn actions(block: &Value, at: &str) -> Result<(), SlackError> {
    let at = format!("{at}/elements");
    let elements = array(required(block, "elements", &at)?, &at)?;
    count(elements, 1, MAX_ACTION_ELEMENTS, &at)?;
    let mut ids = BTreeSet::new();
    for (index, element) in elements.iter().enumerate() {
        interactive(element, &format!("{at}/{index}"), &mut ids)?;
    }
    Ok(())
}

/// One interactive element (of an actions block, or a section's accessory); `ids` are the
/// `action_id`s of its block so far, which must be unique.
fn interactive<'v>(
    element: &'v Value,
    at: &str,
    ids: &mut BTreeSet<&'v str>,
) -> Result<(), SlackError> {
    if element.get("type").and_then(Value::as_str) == Some("static_select") {
        static_select(element, at)?;
        if let Some(id) = element.get("action_id")
            && !ids.insert(id.as_str().unwrap_or_default())
        {
            return Err(error(
                "action_id must be unique within the block".to_owned(),
                &format!("{at}/action_id"),
            ));
        }
        return Ok(());
    }
    match element.get("type").and_then(Value::as_str) {
        Some("button") => {}
        // Other interactive elements flamethread does not send are let through unchecked.
        Some(
            "checkboxes"
            | "datepicker"
            | "datetimepicker"
            | "external_select"
            | "multi_static_select"
            | "multi_external_select"
            | "multi_users_select"
            | "multi_conversations_select"
            | "multi_channels_select"
            | "overflow"
            | "radio_buttons"
            | "timepicker"
            | "users_select"
            | "conversations_select"
            | "channels_select"
            | "workflow_button"
            | "rich_text_input",
        ) => return Ok(()),
        _ => {
            return Err(error(
                "must be a valid interactive element type".to_owned(),
                &format!("{at}/type"),
            ));
        }
    }
    if let Some(confirm) = element.get("confirm") {
        confirm_dialog(confirm, &format!("{at}/confirm"))?;
    }
    text_object(
        required(element, "text", at)?,
        MAX_BUTTON_TEXT,
        true,
        &format!("{at}/text"),
    )?;
    if let Some(id) = element.get("action_id") {
        non_empty(id, MAX_ACTION_ID, &format!("{at}/action_id"))?;
        if !ids.insert(id.as_str().unwrap_or_default()) {
            return Err(error(
                "action_id must be unique within the block".to_owned(),
                &format!("{at}/action_id"),
            ));
        }
    }
    if let Some(value) = element.get("value") {
        check_len(value, MAX_BUTTON_VALUE, &format!("{at}/value"))?;
    }
    if let Some(url) = element.get("url") {
        non_empty(url, MAX_URL, &format!("{at}/url"))?;
    }
    if let Some(style) = element.get("style")
        && !matches!(style.as_str(), Some("primary" | "danger"))
    {
        return Err(error(
            "must be one of: primary, danger".to_owned(),
            &format!("{at}/style"),
        ));
    }
    Ok(())
}

/// A confirmation dialog: plain-text title (100), text (300), confirm and deny (30 each).
fn confirm_dialog(confirm: &Value, at: &str) -> Result<(), SlackError> {
    for (field, max) in [("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)] {
        text_object(
            required(confirm, field, at)?,
            max,
            true,
            &format!("{at}/{field}"),
        )?;
    }
    if let Some(style) = confirm.get("style")
        && !matches!(style.as_str(), Some("primary" | "danger"))
    {
        return Err(error(
            "must be one of: primary, danger".to_owned(),
            &format!("{at}/style"),
        ));
    }
    Ok(())
}

/// A select menu: a placeholder, 1 to 100 options of plain text (75) with values (150).
fn static_select(element: &Value, at: &str) -> Result<(), SlackError> {
    if let Some(confirm) = element.get("confirm") {
        confirm_dialog(confirm, &format!("{at}/confirm"))?;
    }
    if let Some(placeholder) = element.get("placeholder") {
        text_object(
            placeholder,
            MAX_PLACEHOLDER,
            true,
            &format!("{at}/placeholder"),
        )?;
    }
    if let Some(id) = element.get("action_id") {
        non_empty(id, MAX_ACTION_ID, &format!("{at}/action_id"))?;
    }
    let options_at = format!("{at}/options");
    let options = array(required(element, "options", &options_at)?, &options_at)?;
    count(options, 1, MAX_OPTIONS, &options_at)?;
    for (index, option) in options.iter().enumerate() {
        let at = format!("{options_at}/{index}");
        text_object(
            required(option, "text", &at)?,
            MAX_BUTTON_TEXT,
            true,
            &format!("{at}/text"),
        )?;
        non_empty(
            required(option, "value", &at)?,
            MAX_OPTION_VALUE,
            &format!("{at}/value"),
        )?;
    }
    Ok(())
}

fn image<'a>(
    block: &Value,
    at: &str,
    file: &dyn Fn(&str) -> Option<&'a File>,
) -> Result<(), SlackError> {
    non_empty(
        required(block, "alt_text", at)?,
        MAX_ALT_TEXT,
        &format!("{at}/alt_text"),
    )?;
    if let Some(title) = block.get("title") {
        text_object(title, MAX_ALT_TEXT, true, &format!("{at}/title"))?;
    }
    match (block.get("image_url"), block.get("slack_file")) {
        (Some(url), None) => non_empty(url, MAX_URL, &format!("{at}/image_url")),
        (None, Some(slack_file)) => {
            let at = format!("{at}/slack_file");
            let found = match (slack_file.get("id"), slack_file.get("url")) {
                (Some(id), None) => file(string(id, &at)?),
                (None, Some(url)) => {
                    // `url_private` (`…/files-pri/T…-F…/name`) or `permalink`
                    // (`…/files/U…/F…/name`): the segment that is a file id.
                    let url = string(url, &at)?;
                    url.split('/')
                        .map(|part| part.rsplit_once('-').map_or(part, |(_, id)| id))
                        .find(|part| part.starts_with('F') && file(part).is_some())
                        .and_then(file)
                }
                _ => {
                    return Err(error("must provide exactly one of id, url".to_owned(), &at));
                }
            };
            match found {
                Some(found)
                    if IMAGE_TYPES.contains(&found.mimetype.as_str())
                        && !found.shares.is_empty() =>
                {
                    Ok(())
                }
                _ => Err(error("invalid slack file".to_owned(), &at)),
            }
        }
        _ => Err(error(
            "must provide exactly one of image_url, slack_file".to_owned(),
            at,
        )),
    }
}

fn data_visualization(block: &Value, at: &str) -> Result<(), SlackError> {
    non_empty(
        required(block, "title", at)?,
        MAX_CHART_TITLE,
        &format!("{at}/title"),
    )?;
    let at = format!("{at}/chart");
    let chart = required(block, "chart", &at)?;
    match chart.get("type").and_then(Value::as_str) {
        Some("line" | "bar" | "area") => {}
        Some("pie") => {
            let at = format!("{at}/segments");
            let segments = array(required(chart, "segments", &at)?, &at)?;
            count(segments, 1, MAX_CHART_POINTS, &at)?;
            for (index, segment) in segments.iter().enumerate() {
                let at = format!("{at}/{index}");
                non_empty(
                    required(segment, "label", &at)?,
                    MAX_CHART_LABEL,
                    &format!("{at}/label"),
                )?;
                if !segment
                    .get("value")
                    .and_then(Value::as_f64)
                    .is_some_and(|v| v > 0.0)
                {
                    return Err(error(
                        "must be a number above 0".to_owned(),
                        &format!("{at}/value"),
                    ));
                }
            }
            return Ok(());
        }
        _ => {
            return Err(error(
                "must be one of: pie, bar, area, line".to_owned(),
                &format!("{at}/type"),
            ));
        }
    }
    let axis_at = format!("{at}/axis_config");
    let axis = required(chart, "axis_config", &axis_at)?;
    let categories_at = format!("{axis_at}/categories");
    let categories = array(
        required(axis, "categories", &categories_at)?,
        &categories_at,
    )?;
    count(categories, 1, MAX_CHART_POINTS, &categories_at)?;
    let mut known = BTreeSet::new();
    for (index, category) in categories.iter().enumerate() {
        let at = format!("{categories_at}/{index}");
        non_empty(category, MAX_CHART_LABEL, &at)?;
        if !known.insert(string(category, &at)?) {
            return Err(error("categories must be unique".to_owned(), &at));
        }
    }
    for label in ["x_label", "y_label"] {
        if let Some(value) = axis.get(label) {
            check_len(value, MAX_CHART_TITLE, &format!("{axis_at}/{label}"))?;
        }
    }
    let series_at = format!("{at}/series");
    let series = array(required(chart, "series", &series_at)?, &series_at)?;
    count(series, 1, MAX_CHART_SERIES, &series_at)?;
    let mut names = BTreeSet::new();
    for (index, one) in series.iter().enumerate() {
        let at = format!("{series_at}/{index}");
        let name = required(one, "name", &at)?;
        non_empty(name, MAX_CHART_LABEL, &format!("{at}/name"))?;
        if !names.insert(string(name, &at)?) {
            return Err(error(
                "series names must be unique".to_owned(),
                &format!("{at}/name"),
            ));
        }
        let data_at = format!("{at}/data");
        let data = array(required(one, "data", &data_at)?, &data_at)?;
        count(data, 1, MAX_CHART_POINTS, &data_at)?;
        let mut seen = BTreeSet::new();
        for (index, point) in data.iter().enumerate() {
            let at = format!("{data_at}/{index}");
            let label = string(required(point, "label", &at)?, &format!("{at}/label"))?;
            if !known.contains(label) || !seen.insert(label) {
                return Err(error(
                    "label must be one of the categories, once".to_owned(),
                    &format!("{at}/label"),
                ));
            }
            if !point.get("value").is_some_and(Value::is_number) {
                return Err(error("must be a number".to_owned(), &format!("{at}/value")));
            }
        }
        if seen.len() != known.len() {
            return Err(error(
                "must have one point per category".to_owned(),
                &data_at,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(blocks: Value) -> String {
        let blocks = blocks.as_array().cloned().unwrap_or_default();
        let err = validate(&blocks, &|_| None).expect_err("refused");
        assert_eq!(err.code, "invalid_blocks");
        err.messages.join(" ")
    }

    fn line(title: &str, categories: &[&str], series: Value) -> Value {
        json!({"type": "data_visualization", "title": title, "chart": {"type": "line",
            "series": series, "axis_config": {"categories": categories}}})
    }

    #[test]
    fn slack_limits_are_enforced_with_a_pointer_to_the_field() {
        let long = "h".repeat(151);
        assert!(
            refused(json!([{"type": "header", "text": {"type": "plain_text", "text": long}}]))
                .contains("must be less than 151 characters [json-pointer:/blocks/0/text/text]")
        );
        assert!(
            refused(json!([{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}]))
                .contains("must be one of: plain_text")
        );
        assert!(refused(json!([{"type": "section"}])).contains("either text or fields"));
        assert!(
            refused(json!([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]))
                .contains("more than 0 characters")
        );
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({"type": "mrkdwn", "text": i.to_string()}))
            .collect();
        assert!(
            refused(json!([{"type": "context", "elements": eleven}]))
                .contains("no more than 10 items allowed [json-pointer:/blocks/0/elements]")
        );
        let button =
            json!({"type": "button", "text": {"type": "plain_text", "text": "b".repeat(76)}});
        assert!(refused(json!([{"type": "actions", "elements": [button]}])).contains("76"));
        let twice = json!({"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b"}});
        assert!(
            refused(json!([{"type": "actions", "elements": [twice, twice]}])).contains("unique")
        );
        assert!(refused(json!([{"type": "image", "alt_text": "a"}])).contains("exactly one of"));
        let typo = json!({"type": "buton", "text": {"type": "plain_text", "text": "b"}});
        assert!(
            refused(json!([{"type": "actions", "elements": [typo]}])).contains("/elements/0/type")
        );
        let long_dialog = json!({"type": "button", "text": {"type": "plain_text", "text": "b"}, "confirm": {
            "title": {"type": "plain_text", "text": "t"}, "text": {"type": "plain_text", "text": "x".repeat(301)},
            "confirm": {"type": "plain_text", "text": "ok"}, "deny": {"type": "plain_text", "text": "no"}}});
        assert!(
            refused(json!([{"type": "actions", "elements": [long_dialog]}]))
                .contains("/confirm/text/text")
        );
        let select = json!({"type": "static_select", "action_id": "s", "options": [
            {"text": {"type": "plain_text", "text": "1h"}, "value": "v".repeat(151)}]});
        assert!(
            refused(json!([{"type": "actions", "elements": [select]}]))
                .contains("must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]")
        );
        assert!(
            refused(
                json!([{"type": "image", "alt_text": "a", "slack_file": {"id": "F0NOPE0000"}}])
            )
            .contains("invalid slack file")
        );
    }

    #[test]
    fn a_chart_is_refused_unless_it_fits_slack_s_limits() {
        let ok = line(
            "cpu",
            &["10:00", "10:05"],
            json!([{"name": "now", "data": [{"label": "10:00", "value": 1}, {"label": "10:05", "value": 2.5}]}]),
        );
        validate(&[ok.clone(), ok.clone()], &|_| None).expect("two charts are fine");
        assert!(refused(json!([ok, ok, ok])).contains("no more than 2 data_visualization"));
        assert!(refused(json!([line(&"t".repeat(51), &["a"], json!([]))])).contains("/title"));
        assert!(
            refused(json!([line(
                "t",
                &["a"],
                json!([{"name": "s", "data": [{"label": "b", "value": 1}]}])
            )]))
            .contains("one of the categories")
        );
        let many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(json!([line("t", &many, json!([]))])).contains(
            "no more than 20 items allowed [json-pointer:/blocks/0/chart/axis_config/categories]"
        ));
        assert!(
            refused(json!([line(
                "t",
                &["a"],
                json!([{"name": "s", "data": [{"label": "a", "value": "1"}]}])
            )]))
            .contains("must be a number")
        );
    }
}
