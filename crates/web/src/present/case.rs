//! A case (工单) as the API answers it: the engine's case with its timeline worded in the
//! reader's language (`case-event-*` of `timeline.ftl`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::case::{CaseKind, CaseOpener, CaseStatus};
use yuanlu_engine::cases::{Case as EngineCase, CaseEvent as EngineCaseEvent, CaseEventFacts};
use yuanlu_engine::views::Page;
use yuanlu_words::{Arg, Lang};

use super::say;

/// One thing that happened to a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseEvent {
    pub at: DateTime<Utc>,
    /// `case.opened`, `case.assigned` or `case.resolved`.
    pub event: String,
    pub actor: String,
    /// What happened, in words (the reader's language).
    pub description: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Case {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    pub kind: CaseKind,
    pub description: String,
    pub contact: Option<String>,
    pub status: CaseStatus,
    pub owner: Option<String>,
    pub resolution: Option<String>,
    pub opened_by: CaseOpener,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The case's history, oldest first, from the audit log.
    pub timeline: Vec<CaseEvent>,
}

/// What a case event says, in `lang`.
pub fn event_words(lang: Lang, event: &str, facts: &CaseEventFacts) -> String {
    match facts {
        CaseEventFacts::Opened { opened_by, kind } => {
            let kind = match kind {
                Some(CaseKind::NotArrived) => "case-event-kind-not-arrived",
                Some(CaseKind::WrongAmount) => "case-event-kind-wrong-amount",
                Some(CaseKind::Other) | None => "case-event-kind-other",
            };
            let kind = say(lang, kind, &[]);
            say(
                lang,
                "case-event-opened",
                &[
                    ("opened_by", Arg::Str(opened_by)),
                    ("kind", Arg::Str(&kind)),
                ],
            )
        }
        CaseEventFacts::Assigned { owner } => {
            say(lang, "case-event-assigned", &[("owner", Arg::Str(owner))])
        }
        CaseEventFacts::Resolved { resolution } => say(
            lang,
            "case-event-resolved",
            &[("resolution", Arg::Str(resolution))],
        ),
        CaseEventFacts::Other => event.to_string(),
    }
}

impl CaseEvent {
    pub fn of(lang: Lang, e: EngineCaseEvent) -> CaseEvent {
        CaseEvent {
            description: event_words(lang, &e.event, &e.facts),
            at: e.at,
            event: e.event,
            actor: e.actor,
        }
    }
}

impl Case {
    pub fn of(lang: Lang, c: EngineCase) -> Case {
        let EngineCase {
            id,
            merchant_id,
            refund_id,
            kind,
            description,
            contact,
            status,
            owner,
            resolution,
            opened_by,
            created_at,
            resolved_at,
            timeline,
        } = c;
        Case {
            id,
            merchant_id,
            refund_id,
            kind,
            description,
            contact,
            status,
            owner,
            resolution,
            opened_by,
            created_at,
            resolved_at,
            timeline: timeline
                .into_iter()
                .map(|e| CaseEvent::of(lang, e))
                .collect(),
        }
    }

    pub fn page(lang: Lang, page: Page<EngineCase>) -> Page<Case> {
        Page {
            data: page.data.into_iter().map(|c| Case::of(lang, c)).collect(),
            has_more: page.has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_timeline_reads_in_english_as_it_always_did_and_in_chinese() {
        let opened = CaseEventFacts::Opened {
            opened_by: "merchant".to_string(),
            kind: Some(CaseKind::NotArrived),
        };
        let resolved = CaseEventFacts::Resolved {
            resolution: "the bank confirmed the credit".to_string(),
        };
        let assigned = CaseEventFacts::Assigned {
            owner: "ops: Wang".to_string(),
        };
        let en = |facts| event_words(Lang::En, "case.x", facts);
        assert_eq!(
            en(&opened),
            "opened by the merchant: the refund has not arrived"
        );
        assert_eq!(en(&assigned), "assigned to ops: Wang");
        assert_eq!(en(&resolved), "resolved: the bank confirmed the credit");
        assert_eq!(en(&CaseEventFacts::Other), "case.x");
        let zh = |facts| event_words(Lang::Zh, "case.x", facts);
        assert_eq!(zh(&opened), "商户发起：退款未到账");
        assert_eq!(zh(&assigned), "已分配给ops: Wang");
        assert_eq!(zh(&resolved), "已解决：the bank confirmed the credit");
    }
}
