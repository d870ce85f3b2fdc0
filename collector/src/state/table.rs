//! The DynamoDB table of the shared state: the few calls it needs
//! (`PutItem`, `UpdateItem`, `Query`), each conditional where two
//! collectors may race, with the SDK's standard retry (backoff with
//! jitter, throttling included) raised to 8 attempts. Credentials and
//! region come from the standard AWS chain; `AWS_ENDPOINT_URL` points it
//! elsewhere (tests: moto on loopback).

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::errors::{Action, StateError};
use super::item::{self, EXPIRES, Item, PK, SK};

/// One page of a Query at most this many items.
const PAGE: i32 = 500;

/// A table holding the shared state.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
}

/// What a conditional raise found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raised {
    /// The attribute was missing or lower: it holds the new value now.
    Yes,
    /// It already held this value or more: the value it holds.
    Already(Option<i64>),
}

impl Table {
    /// The table `name`, with a client from the standard AWS
    /// configuration chain.
    pub async fn new(name: &str) -> Table {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(8))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(crate::guard::CONNECT_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        Table::with_client(Client::new(&config), name)
    }

    /// The table `name` through `client`.
    pub fn with_client(client: Client, name: &str) -> Table {
        Table {
            client,
            name: name.to_owned(),
        }
    }

    fn error<E, R>(&self, action: Action, partition: &str, e: &SdkError<E, R>) -> StateError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StateError {
            action,
            table: self.name.clone(),
            partition: partition.to_owned(),
            reason: DisplayErrorContext(e).to_string(),
        }
    }

    /// Stores `item` unless an item with its key is there already;
    /// says whether it stored it (false: the event came before).
    ///
    /// # Errors
    ///
    /// The call failed, retries spent.
    pub async fn put_new(&self, item: Item) -> Result<bool, StateError> {
        let pk = item::string(&item, PK).unwrap_or_default().to_owned();
        match self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error(Action::PutItem, &pk, &e)),
        }
    }

    /// Sets the number `attribute` of item (`pk`, `sk`) to `value` if it
    /// is missing or lower (and `expires`, when given, with it): one
    /// collector wins a race to report or to move time on.
    ///
    /// # Errors
    ///
    /// The call failed, retries spent.
    pub async fn raise(
        &self,
        (pk, sk): (&str, &str),
        attribute: &str,
        value: i64,
        expires: Option<i64>,
    ) -> Result<Raised, StateError> {
        let mut update = "SET #a = :v".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(PK, AttributeValue::S(pk.to_owned()))
            .key(SK, AttributeValue::S(sk.to_owned()))
            .condition_expression("attribute_not_exists(#a) OR #a < :v")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", item::n(value))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(expires) = expires {
            update.push_str(", #e = :e");
            request = request
                .expression_attribute_names("#e", EXPIRES)
                .expression_attribute_values(":e", item::n(expires));
        }
        match request.update_expression(update).send().await {
            Ok(_) => Ok(Raised::Yes),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    let held = c.item().and_then(|i| i.get(attribute)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                    Ok(Raised::Already(held))
                }
                _ => Err(self.error(Action::UpdateItem, pk, &e)),
            },
        }
    }

    /// Sets the number `attribute` of item (`pk`, `sk`) to `value` if
    /// `guard` still holds `expected`; says whether it did.
    ///
    /// # Errors
    ///
    /// The call failed, retries spent.
    pub async fn set_if(
        &self,
        (pk, sk): (&str, &str),
        attribute: &str,
        value: i64,
        (guard, expected): (&str, i64),
    ) -> Result<bool, StateError> {
        match self
            .client
            .update_item()
            .table_name(&self.name)
            .key(PK, AttributeValue::S(pk.to_owned()))
            .key(SK, AttributeValue::S(sk.to_owned()))
            .update_expression("SET #a = :v")
            .condition_expression("#g = :g")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_names("#g", guard)
            .expression_attribute_values(":v", item::n(value))
            .expression_attribute_values(":g", item::n(expected))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error(Action::UpdateItem, pk, &e)),
        }
    }

    /// The items of partition `pk` in sort-key order, strongly consistent
    /// (what every write acknowledged before is in it), at most `cap` of
    /// them; and whether more were left unread.
    ///
    /// # Errors
    ///
    /// The call failed, retries spent.
    pub async fn query(&self, pk: &str, cap: usize) -> Result<(Vec<Item>, bool), StateError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let left = cap.saturating_sub(items.len());
            if left == 0 {
                return Ok((items, start.is_some()));
            }
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .consistent_read(true)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", AttributeValue::S(pk.to_owned()))
                .limit(i32::try_from(left).unwrap_or(PAGE).min(PAGE))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error(Action::Query, pk, &e))?;
            start = page.last_evaluated_key().cloned();
            items.extend(page.items.unwrap_or_default());
            if start.is_none() {
                return Ok((items, false));
            }
        }
    }
}
