//! The Hub's part of `/openapi.json`: the answer shapes (the handlers build
//! them as JSON; these types only describe them). The document that lists
//! every `#[utoipa::path]` of `/hub/v1` and `/idm/v1` is [`super::document`].

#![allow(dead_code)] // the types describe answers; they are never built

use mno_events::directory::SharedEntity;
use mno_events::openapi::ErrorBody;
pub use mno_events::openapi::{AppPath, OrgPath};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::billing::money::Every;

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgUserPath {
    /// The organisation's id.
    org: String,
    /// The member's user id.
    user: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgAppPath {
    /// The organisation's id.
    org: String,
    /// The app's id.
    app: String,
}

#[derive(ToSchema)]
pub struct User {
    id: String,
    email: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A password changed or reset, and how many of the user's sessions it ended.
#[derive(ToSchema)]
pub struct PasswordChanged {
    user: User,
    sessions_ended: u64,
}

/// A password reset link that works: whose password it resets, and until when.
#[derive(ToSchema)]
pub struct ResetLink {
    email: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// The answers for a password reset link that does not work.
#[derive(IntoResponses)]
pub enum ResetLinkErrors {
    #[response(
        status = 404,
        description = "No such reset link: ask the operator for a new one"
    )]
    Unknown(ErrorBody),
    #[response(
        status = 410,
        description = "The reset link was used (`reset_link_used`) or has expired (`reset_link_expired`): ask the operator for a new one"
    )]
    Gone(ErrorBody),
}

/// A session: send `token` as `Authorization: Bearer <token>`.
#[derive(ToSchema)]
pub struct Session {
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
    user: User,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Member,
    PowerUser,
    Admin,
    SuperAdmin,
}

/// What an organisation is, to whoever may see it.
#[derive(ToSchema)]
pub struct OrgFacts {
    id: String,
    name: String,
    /// ISO 4217 code.
    currency: String,
    /// IANA time zone.
    timezone: String,
    /// ISO 3166 alpha-2 code, `null` when not given.
    country: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// An organisation (a tenant), with the caller's role in it.
#[derive(ToSchema)]
pub struct Org {
    #[schema(inline)]
    #[serde(flatten)]
    org: OrgFacts,
    role: Role,
}

#[derive(ToSchema)]
pub struct OrgList {
    orgs: Vec<Org>,
}

#[derive(ToSchema)]
pub struct Member {
    user_id: String,
    email: String,
    name: String,
    role: Role,
    #[schema(format = DateTime)]
    added_at: String,
}

#[derive(ToSchema)]
pub struct MemberList {
    members: Vec<Member>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgInvitationPath {
    /// The organisation's id.
    org: String,
    /// The invitation's id.
    invitation: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InvitationPath {
    /// The invitation's id (from `GET /hub/v1/invitations`).
    invitation: String,
}

/// A pending invitation, as the org's admins see it.
#[derive(ToSchema)]
pub struct Invitation {
    id: String,
    org_id: String,
    email: String,
    role: Role,
    /// The inviting user's id.
    invited_by: String,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
pub struct InvitationList {
    invitations: Vec<Invitation>,
}

#[derive(ToSchema)]
pub struct Inviter {
    id: String,
    name: String,
}

/// A pending invitation, as its invitee sees it.
#[derive(ToSchema)]
pub struct ReceivedInvitation {
    id: String,
    org_id: String,
    org_name: String,
    role: Role,
    invited_by: Inviter,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
pub struct ReceivedInvitationList {
    invitations: Vec<ReceivedInvitation>,
}

#[derive(ToSchema)]
pub struct Install {
    org_id: String,
    app_id: String,
    app_name: String,
    data_sharing: bool,
    /// The entities the org shares with the app, each one of the app's
    /// `shared_entities`; `null`: all of them.
    entities: Option<Vec<String>>,
    /// The user who installed it.
    installed_by: String,
    #[schema(format = DateTime)]
    installed_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
pub struct InstallList {
    installs: Vec<Install>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Stack {
    Cloud,
    Connector,
}

/// An app as the catalogue shows it to anyone signed in.
#[derive(ToSchema)]
pub struct PublicApp {
    id: String,
    name: String,
    stack: Stack,
    shared_entities: Vec<SharedEntity>,
}

#[derive(ToSchema)]
pub struct AppList {
    apps: Vec<PublicApp>,
}

/// A live API key of an app (never its secret).
#[derive(ToSchema)]
pub struct ApiKey {
    key: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// When a rotated-out key stops working; `null` for the current one.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// An app as its owner (or the app itself) sees it.
#[derive(ToSchema)]
pub struct AppSettings {
    id: String,
    owner_id: String,
    name: String,
    stack: Stack,
    webhook_url: Option<String>,
    account_webhook_url: Option<String>,
    shared_entities: Vec<SharedEntity>,
    /// Set after the webhook answered 410 Gone; setting `webhook_url` again clears it.
    webhook_disabled: bool,
    webhook_disabled_reason: Option<String>,
    /// Where single sign-on may send users back with a code (docs/api/sso.md).
    redirect_uris: Vec<String>,
    /// Where single sign-on may send users once signed out.
    post_logout_redirect_uris: Vec<String>,
    /// Where the Hub posts logout tokens when a user's session ends.
    backchannel_logout_uri: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// `GET /hub/v1/apps/{app}`: the settings and the live API keys.
#[derive(ToSchema)]
pub struct AppWithKeys {
    #[schema(inline)]
    #[serde(flatten)]
    settings: AppSettings,
    credentials: Vec<ApiKey>,
}

/// An API key and its secret, shown once.
#[derive(ToSchema)]
pub struct KeyAndSecret {
    key: String,
    secret: String,
}

/// `POST /hub/v1/apps`: the app, its credentials and webhook secret (shown this once).
#[derive(ToSchema)]
pub struct NewAppAnswer {
    #[schema(inline)]
    #[serde(flatten)]
    settings: AppSettings,
    credentials: KeyAndSecret,
    /// Signs the webhooks sent to the app (Standard Webhooks, `whsec_...`).
    webhook_secret: String,
}

/// `POST /hub/v1/apps/{app}/credentials/rotate`.
#[derive(ToSchema)]
pub struct RotatedCredentials {
    app_id: String,
    credentials: KeyAndSecret,
    webhook_secret: String,
    /// Until when the previous key and webhook secret keep working.
    #[schema(format = DateTime)]
    previous_valid_until: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BillPath {
    /// The bill's id (from `POST /hub/v1/bills`).
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RecurringBillPath {
    /// The recurring bill's id (from `POST /hub/v1/recurring_bills`).
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgInvoicePath {
    /// The organisation's id.
    org: String,
    /// The invoice's id, `inv-<org>-<YYYY-MM>-<currency>`.
    invoice: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillsQuery {
    /// Only the bills of this organisation.
    org: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 printable ASCII characters, e.g. a UUID: the same key and body
    /// answer the first result again; the same key with another body, 409.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BillStatus {
    Submitted,
    Invoiced,
    Cancelled,
}

/// `POST /hub/v1/bills`: unknown fields are refused.
#[derive(ToSchema)]
pub struct NewBill {
    /// An organisation where the app is installed.
    org: String,
    /// The amount in the currency's minor unit, 0 to 10^15.
    #[schema(minimum = 0)]
    price_cents: i64,
    /// ISO 4217 code.
    currency: String,
    /// 1 to 500 characters.
    description: String,
    /// 1 or more (default 1).
    #[schema(minimum = 1)]
    units: Option<i64>,
    #[schema(format = DateTime)]
    period_started_at: Option<String>,
    #[schema(format = DateTime)]
    period_ended_at: Option<String>,
    /// A cost passed on from a third party (default false).
    third_party: Option<bool>,
}

/// A bill an app submitted (docs/api/billing.md).
#[derive(ToSchema)]
pub struct Bill {
    id: String,
    app_id: String,
    org_id: String,
    /// The recurring bill whose cycle this is, else `null`.
    recurring_bill_id: Option<String>,
    price_cents: i64,
    currency: String,
    description: String,
    units: i64,
    #[schema(format = DateTime)]
    period_started_at: Option<String>,
    #[schema(format = DateTime)]
    period_ended_at: Option<String>,
    third_party: bool,
    /// `YYYY-MM`: the first month whose invoice may carry it.
    due_period: String,
    status: BillStatus,
    /// Set once invoiced.
    invoice_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
pub struct BillList {
    bills: Vec<Bill>,
}

/// `POST /hub/v1/recurring_bills`: unknown fields are refused.
#[derive(ToSchema)]
pub struct NewRecurringBill {
    org: String,
    #[schema(minimum = 0)]
    price_cents: i64,
    currency: String,
    description: String,
    period: Every,
    /// Periods per cycle, 1 to 366 (default 1).
    #[schema(minimum = 1, maximum = 366)]
    frequency: Option<i64>,
    /// 1 to 100000; absent: until cancelled.
    #[schema(minimum = 1, maximum = 100000)]
    cycles: Option<i64>,
    /// `YYYY-MM-DD` (default today, UTC).
    #[schema(format = Date)]
    start_date: Option<String>,
    /// Billed once, with the first cycle (default 0).
    #[schema(minimum = 0)]
    initial_cents: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RecurringStatus {
    Submitted,
    Active,
    Expired,
    Cancelled,
}

#[derive(ToSchema)]
pub struct RecurringBill {
    id: String,
    app_id: String,
    org_id: String,
    price_cents: i64,
    currency: String,
    description: String,
    period: Every,
    frequency: i64,
    cycles: Option<i64>,
    #[schema(format = Date)]
    start_date: String,
    initial_cents: i64,
    cycles_billed: i64,
    status: RecurringStatus,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
pub struct RecurringBillList {
    recurring_bills: Vec<RecurringBill>,
}

/// A bill as its org's admins see it: the bill and the name of the app.
#[derive(ToSchema)]
pub struct OrgBill {
    #[schema(inline)]
    #[serde(flatten)]
    bill: Bill,
    app_name: String,
}

/// A recurring bill as its org's admins see it.
#[derive(ToSchema)]
pub struct OrgRecurringBill {
    #[schema(inline)]
    #[serde(flatten)]
    recurring_bill: RecurringBill,
    app_name: String,
}

/// `GET /hub/v1/orgs/{org}/bills`: every app's bills to the org, oldest first.
#[derive(ToSchema)]
pub struct OrgBills {
    bills: Vec<OrgBill>,
    recurring_bills: Vec<OrgRecurringBill>,
}

/// An issued invoice in an org's list.
#[derive(ToSchema)]
pub struct InvoiceSummary {
    id: String,
    org_id: String,
    /// `YYYY-MM`.
    period: String,
    currency: String,
    total_cents: i64,
    /// The last sequence of stream HUB the invoice was computed from.
    cut_at_seq: i64,
    #[schema(format = DateTime)]
    issued_at: String,
}

#[derive(ToSchema)]
pub struct InvoiceList {
    invoices: Vec<InvoiceSummary>,
}

/// A bill as an invoice carries it.
#[derive(ToSchema)]
pub struct InvoicedBill {
    id: String,
    app_id: String,
    app_name: String,
    org_id: String,
    price_cents: i64,
    currency: String,
    description: String,
    units: i64,
    period_started_at: Option<String>,
    period_ended_at: Option<String>,
    third_party: bool,
    due_period: String,
    created_at: String,
}

#[derive(ToSchema)]
pub struct InvoiceLine {
    app_id: String,
    app_name: String,
    total_cents: i64,
    bills: Vec<InvoicedBill>,
}

/// An invoice: the bytes the billing run issued (canonical JSON).
#[derive(ToSchema)]
pub struct Invoice {
    id: String,
    org_id: String,
    period: String,
    currency: String,
    cut_at_seq: i64,
    total_cents: i64,
    lines: Vec<InvoiceLine>,
}

/// An organisation as an app that it installed sees it.
#[derive(ToSchema)]
pub struct Customer {
    #[schema(inline)]
    #[serde(flatten)]
    org: OrgFacts,
    /// Whether the org shares its records with the app.
    data_sharing: bool,
    /// The entities the org shares with the app; `null`: all it asks for.
    entities: Option<Vec<String>>,
    #[schema(format = DateTime)]
    installed_at: String,
}

#[derive(ToSchema)]
pub struct CustomerList {
    orgs: Vec<Customer>,
}
