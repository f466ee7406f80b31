//! Who did it, as people read it: an audit actor (`merchant:mch_…:supervisor:usr_…`) shown
//! as the staff member's username and role, never the internal id.

use std::collections::HashMap;

use yuanlu_engine::auth::Principal;

use super::ctx::Ctx;
use crate::AppState;

/// Staff user ids → usernames, of the staff the reader may see.
#[derive(Debug, Clone, Default)]
pub struct ActorNames {
    usernames: HashMap<String, String>,
}

impl ActorNames {
    /// The usernames of the staff `who` may list (a merchant its own, the acquirer all). A
    /// failure leaves the names out: actors are then shown by role.
    pub async fn load(state: &AppState, who: &Principal) -> Self {
        let usernames = match state.engine.list_staff_users(who).await {
            Ok(users) => users.into_iter().map(|u| (u.id, u.username)).collect(),
            Err(error) => {
                tracing::warn!(%error, "staff usernames could not be read for a page");
                HashMap::new()
            }
        };
        ActorNames { usernames }
    }

    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        ActorNames {
            usernames: pairs
                .iter()
                .map(|(id, name)| (id.to_string(), name.to_string()))
                .collect(),
        }
    }

    /// `li.cashier (收银员)`; a merchant's API key by its role; the acquirer, the consumer
    /// and the system by name; anything else as recorded.
    pub fn name(&self, ctx: &Ctx, actor: &str) -> String {
        let parts: Vec<&str> = actor.split(':').collect();
        match parts.as_slice() {
            ["merchant", _merchant, role, key_id] => {
                let role_word = match *role {
                    "staff" => ctx.word("role", "cashier"),
                    "supervisor" => ctx.word("role", "supervisor"),
                    other => other.to_string(),
                };
                match self.usernames.get(*key_id) {
                    Some(username) => format!("{username} ({role_word})"),
                    None => ctx.t1("actor-merchant-key", "role", &role_word),
                }
            }
            ["acquirer", ..] => ctx.t("actor-acquirer"),
            ["consumer", ..] => ctx.t("actor-consumer"),
            ["system", ..] => ctx.t("actor-system"),
            _ => actor.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yuanlu_words::Lang;

    #[test]
    fn actors_read_as_usernames_not_ids() {
        let names = ActorNames::of(&[("usr_01J", "wang.supervisor")]);
        let ctx = Ctx::bare(Lang::En);
        let shown = names.name(&ctx, "merchant:mch_01A:supervisor:usr_01J");
        assert_eq!(shown, "wang.supervisor (Supervisor)");
        let key = names.name(&ctx, "merchant:mch_01A:staff:key_01K");
        assert!(!key.contains("key_01K") && !key.contains("mch_"), "{key}");
        assert!(!names.name(&ctx, "acquirer:admin").contains(':'));
        let zh = names.name(&Ctx::bare(Lang::Zh), "merchant:mch_01A:supervisor:usr_01J");
        assert_eq!(zh, "wang.supervisor (主管)");
    }
}
