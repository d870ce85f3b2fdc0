//! CloudWatch Logs as a source of events: `FilterLogEvents`, paginated,
//! with the SDK's standard retry (backoff with jitter, throttling included)
//! raised to 8 attempts, and a connect timeout of
//! [`crate::guard::CONNECT_TIMEOUT`] (the Lambda collector bounds the whole
//! call by its budget, [`crate::guard`]). Credentials and region come from the standard AWS
//! chain; `--endpoint-url` or `AWS_ENDPOINT_URL` points it elsewhere.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::Client;

use super::{ContextEvent, FILTER_PATTERN, Fetching, LogSource};

/// One event of a log group, with its stream.
#[derive(Debug, Clone)]
pub struct GroupEvent {
    /// The log stream.
    pub stream: String,
    /// The event.
    pub event: ContextEvent,
}

/// What to read from a log group.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The log group.
    pub group: String,
    /// Only these streams (empty: all).
    pub streams: Vec<String>,
    /// Only streams whose names start with this.
    pub stream_prefix: Option<String>,
    /// From (ms since the epoch, inclusive).
    pub start_ms: i64,
    /// To (ms since the epoch, exclusive).
    pub end_ms: i64,
    /// A CloudWatch filter pattern.
    pub pattern: Option<String>,
}

/// A CloudWatch Logs client.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    /// A client from the standard AWS configuration chain.
    pub async fn new(endpoint_url: Option<&str>) -> CloudWatch {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(8))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(crate::guard::CONNECT_TIMEOUT)
                    .build(),
            );
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        CloudWatch {
            client: Client::new(&loader.load().await),
        }
    }

    /// The names of the log groups whose names start with `prefix`, every
    /// page (`DescribeLogGroups`).
    ///
    /// # Errors
    ///
    /// The service's error once the SDK's retries are spent, in words.
    pub async fn groups(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut pages = self
            .client
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "DescribeLogGroups of prefix {prefix}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                )
            })?;
            out.extend(
                page.log_groups()
                    .iter()
                    .filter_map(|g| g.log_group_name().map(str::to_owned)),
            );
        }
        Ok(out)
    }

    /// The names of a log group's streams that may hold events between
    /// `start_ms` and `end_ms` (`DescribeLogStreams`), newest first. Without
    /// a prefix they come by last event time, and the listing stops at the
    /// first stream whose last event is an hour (CloudWatch's own lag in
    /// updating that time) before `start_ms`; the API cannot order by time
    /// under a prefix, so with one every stream of the prefix is listed
    /// and those that ended too early or began too late are left out.
    ///
    /// # Errors
    ///
    /// The service's error once the SDK's retries are spent, in words.
    pub async fn streams(
        &self,
        group: &str,
        prefix: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, String> {
        /// How late CloudWatch may update a stream's last event time.
        const LAG_MS: i64 = 3_600_000;
        let mut request = self.client.describe_log_streams().log_group_name(group);
        request = match prefix {
            Some(p) => request.log_stream_name_prefix(p),
            None => request
                .order_by(aws_sdk_cloudwatchlogs::types::OrderBy::LastEventTime)
                .descending(true),
        };
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "DescribeLogStreams of {group}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                )
            })?;
            let mut older = false;
            for s in page.log_streams() {
                let Some(name) = s.log_stream_name() else {
                    continue;
                };
                let last = s
                    .last_event_timestamp()
                    .or(s.last_ingestion_time())
                    .unwrap_or(i64::MAX);
                let first = s.first_event_timestamp().unwrap_or(i64::MIN);
                if last.saturating_add(LAG_MS) < start_ms {
                    older = true;
                    continue;
                }
                if first < end_ms {
                    out.push(name.to_owned());
                }
            }
            if older && prefix.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The events matching `query`, every page; `progress` is told the
    /// count so far after each page.
    ///
    /// # Errors
    ///
    /// The service's error once the SDK's retries are spent, in words.
    pub async fn events(
        &self,
        query: &Query,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<GroupEvent>, String> {
        let mut request = self
            .client
            .filter_log_events()
            .log_group_name(&query.group)
            .start_time(query.start_ms)
            .end_time(query.end_ms.saturating_sub(1));
        for s in &query.streams {
            request = request.log_stream_names(s);
        }
        if let Some(prefix) = &query.stream_prefix {
            request = request.log_stream_name_prefix(prefix);
        }
        if let Some(pattern) = &query.pattern {
            request = request.filter_pattern(pattern);
        }
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "FilterLogEvents on {}: {}",
                    query.group,
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                )
            })?;
            for e in page.events() {
                let (Some(ts), Some(message)) = (e.timestamp(), e.message()) else {
                    continue;
                };
                out.push(GroupEvent {
                    stream: e.log_stream_name().unwrap_or_default().to_owned(),
                    event: ContextEvent::new(e.event_id().unwrap_or_default(), ts, message, false),
                });
            }
            progress(out.len());
        }
        Ok(out)
    }
}

impl LogSource for CloudWatch {
    fn fetch<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        start_ms: i64,
        end_ms: i64,
    ) -> Fetching<'a> {
        Box::pin(async move {
            let query = Query {
                group: group.to_owned(),
                streams: vec![stream.to_owned()],
                start_ms,
                end_ms,
                pattern: Some(FILTER_PATTERN.to_owned()),
                ..Query::default()
            };
            Ok(self
                .events(&query, |_| {})
                .await?
                .into_iter()
                .map(|e| e.event)
                .collect())
        })
    }
}
