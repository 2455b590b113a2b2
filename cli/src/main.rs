//! `paas`: the command line of the platform — the cf CLI's commands and behaviour against our
//! CF v3 API, for developers (push, apps, logs, routes) and administrators (orgs, spaces,
//! users, roles, quotas, buildpacks). It never keeps a password: only tokens, in
//! `$PAAS_HOME/config.json` (mode 0600).

mod admin;
mod apps;
mod brokers;
mod client;
mod config;
mod deploy;
mod droplets;
mod env_groups;
mod error;
mod health;
mod labels;
mod logs;
mod lookup;
mod output;
mod push;
mod quotas;
mod route_services;
mod routes;
mod services;
mod session;
mod ssh;
mod staging;
mod tasks;
mod token;
mod upload;

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::client::Client;
use crate::config::Config;
use crate::error::CliError;

const AFTER_HELP: &str = "Exit codes: 0 success, 1 the platform refused or an operation failed, 2 usage error, \
3 not logged in or nothing targeted, 4 not found.\nConfiguration lives in $PAAS_HOME/config.json (default ~/.paas).";

#[derive(Parser)]
#[command(name = "paas", version, about = "Push and run apps on the paas platform", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// One command is parsed once per run: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Show or set the API endpoint
    Api {
        url: Option<String>,
        #[arg(long)]
        skip_ssl_validation: bool,
    },
    /// Log in (prompts for what is not given)
    Login {
        #[arg(short = 'a')]
        api: Option<String>,
        #[arg(short = 'u')]
        username: Option<String>,
        #[arg(short = 'p')]
        password: Option<String>,
        #[arg(short = 'o')]
        org: Option<String>,
        #[arg(short = 's')]
        space: Option<String>,
    },
    /// Log out
    Logout,
    /// Log in without prompts (the target is cleared)
    Auth { username: String, password: String },
    /// Change your password (asks for the current one)
    Passwd,
    /// Print a fresh access token (as an Authorization header value)
    OauthToken,
    /// Print the version of this CLI
    Version,
    /// Show or set the targeted org and space
    Target {
        #[arg(short = 'o')]
        org: Option<String>,
        #[arg(short = 's')]
        space: Option<String>,
    },
    /// Push a new app or sync changes to an existing app
    Push {
        name: Option<String>,
        #[arg(short = 'f', long = "manifest")]
        manifest: Option<PathBuf>,
        #[arg(short = 'p', long = "path")]
        path: Option<PathBuf>,
        #[arg(short = 'b', long = "buildpack")]
        buildpacks: Vec<String>,
        #[arg(short = 'm', long = "memory")]
        memory: Option<String>,
        #[arg(short = 'k', long = "disk")]
        disk: Option<String>,
        #[arg(short = 'i', long = "instances")]
        instances: Option<i64>,
        #[arg(short = 'c', long = "start-command")]
        command: Option<String>,
        #[arg(short = 's', long = "stack")]
        stack: Option<String>,
        #[arg(short = 'u', long = "health-check-type")]
        health_check_type: Option<String>,
        #[arg(long = "endpoint")]
        endpoint: Option<String>,
        #[arg(short = 't', long = "app-start-timeout")]
        timeout: Option<i64>,
        #[arg(long)]
        no_start: bool,
        #[arg(long)]
        no_route: bool,
        #[arg(long)]
        random_route: bool,
        #[command(flatten)]
        strategy: deploy::Strategy,
        /// Log rate limit per instance, e.g. 1K or 16M (-1: unlimited)
        #[arg(short = 'l', long = "log-rate-limit", allow_hyphen_values = true)]
        log_rate: Option<String>,
        /// Ignore the manifest in the folder
        #[arg(long)]
        no_manifest: bool,
        /// A YAML file of values for the manifest's ((variables)) (repeatable)
        #[arg(long = "vars-file")]
        vars_files: Vec<PathBuf>,
        /// A value for a manifest ((variable)): NAME=VALUE (repeatable)
        #[arg(long = "var")]
        vars: Vec<String>,
        /// Run this droplet .tgz (as download-droplet gives it) instead of staging the source
        #[arg(long)]
        droplet: Option<PathBuf>,
        /// Run this docker image (REGISTRY/REPO:TAG or @sha256:DIGEST) instead of staging
        /// source; needs the diego_docker feature flag
        #[arg(short = 'o', long = "docker-image")]
        docker_image: Option<String>,
        /// User name for a private registry; the password comes from CF_DOCKER_PASSWORD
        #[arg(long = "docker-username")]
        docker_username: Option<String>,
    },
    /// List apps in the target space
    Apps {
        #[arg(long)]
        json: bool,
    },
    /// Show an app's health and status
    App {
        name: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        guid: bool,
    },
    /// Create an app without pushing bits (stopped)
    CreateApp {
        name: String,
        /// The app's lifecycle: buildpack (default) or docker
        #[arg(long = "app-type", value_parser = ["buildpack", "docker"])]
        app_type: Option<String>,
    },
    /// Rename an app
    Rename { old: String, new: String },
    /// Apply a manifest to the targeted space (nothing is uploaded or started)
    ApplyManifest {
        #[arg(short = 'f')]
        manifest: PathBuf,
        /// A YAML file of values for the manifest's ((variables)) (repeatable)
        #[arg(long = "vars-file")]
        vars_files: Vec<PathBuf>,
        /// A value for a manifest ((variable)): NAME=VALUE (repeatable)
        #[arg(long = "var")]
        vars: Vec<String>,
    },
    /// Write the app's current settings as a manifest (default ./APP_manifest.yml)
    CreateAppManifest {
        name: String,
        #[arg(short = 'p')]
        path: Option<PathBuf>,
    },
    /// Copy the source of one app to another, stage it and restart the target
    CopySource {
        source: String,
        target: String,
        #[arg(long)]
        no_restart: bool,
    },
    /// Show the health check of each of an app's processes
    GetHealthCheck { name: String },
    /// Change the health check of an app's process (takes effect on restart)
    SetHealthCheck {
        name: String,
        #[arg(value_parser = ["process", "port", "http"])]
        kind: String,
        /// Path for http checks (default /)
        #[arg(long)]
        endpoint: Option<String>,
        /// Seconds one check may take
        #[arg(long = "invocation-timeout")]
        invocation_timeout: Option<i64>,
        #[arg(long = "process", default_value = "web")]
        process: String,
    },
    /// List an app's packages
    Packages { name: String },
    /// Upload a folder as a new package of an app (not staged)
    CreatePackage {
        name: String,
        /// The app's folder (default: the current one)
        #[arg(short = 'p')]
        path: Option<PathBuf>,
    },
    /// Stage a package of an app into a droplet (default: its newest ready package)
    StagePackage {
        name: String,
        #[arg(long = "package-guid")]
        package_guid: Option<String>,
    },
    /// List an app's droplets
    Droplets { name: String },
    /// Make a droplet the app's current one (used at the next start)
    SetDroplet { name: String, droplet: String },
    /// Download an app's droplet (default: the current one)
    DownloadDroplet {
        name: String,
        #[arg(long)]
        droplet: Option<String>,
        /// File or folder to write to (default: droplet_GUID.tgz here)
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// Export an app's droplet (default: the current one) as an OCI image (a tar of an OCI
    /// image layout: stack, droplet and launcher), runnable with runc or any OCI runtime
    ExportImage {
        name: String,
        #[arg(long)]
        droplet: Option<String>,
        /// File or folder to write to (default: droplet_GUID.oci.tar here)
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// Start an app
    Start { name: String },
    /// Stop an app
    Stop { name: String },
    /// Stop all instances, then start them again (or replace them one by one with --strategy)
    Restart {
        name: String,
        #[command(flatten)]
        strategy: deploy::Strategy,
    },
    /// Stage the app's current package again, then restart it (with --strategy: no downtime)
    Restage {
        name: String,
        #[command(flatten)]
        strategy: deploy::Strategy,
    },
    /// Cancel the app's active deployment: the previous version comes back
    CancelDeployment { name: String },
    /// Continue a paused canary deployment
    ContinueDeployment {
        name: String,
        /// Return once the first new instance of the next step is healthy
        #[arg(long)]
        no_wait: bool,
    },
    /// List the app's revisions
    Revisions { name: String },
    /// Show one revision of the app
    Revision {
        name: String,
        #[arg(long)]
        version: i64,
    },
    /// Deploy an earlier revision of the app again (a new revision)
    Rollback {
        name: String,
        #[arg(long)]
        version: i64,
        /// Do not ask for confirmation
        #[arg(short = 'f')]
        force: bool,
        #[command(flatten)]
        strategy: deploy::Strategy,
    },
    /// Run a one-off task with the app's droplet and environment
    RunTask {
        name: String,
        /// The command to run (cf v8 also takes it as a second argument)
        command_arg: Option<String>,
        #[arg(short = 'c', long = "command")]
        command: Option<String>,
        #[arg(long = "name")]
        task_name: Option<String>,
        #[arg(short = 'm')]
        memory: Option<String>,
        #[arg(short = 'k')]
        disk: Option<String>,
        /// Run the command of this process type (and its memory and disk)
        #[arg(long = "process")]
        process: Option<String>,
        /// Wait until the task ends; fail if it fails
        #[arg(long)]
        wait: bool,
    },
    /// List the app's tasks
    Tasks { name: String },
    /// Show one task of the app
    Task { name: String, id: i64 },
    /// Stop a running task of the app
    TerminateTask { name: String, id: i64 },
    /// Open a shell, run a command or forward ports into an app instance over SSH
    #[command(
        after_help = "Examples:\n  paas ssh myapp\n  paas ssh myapp -i 1 -c 'ps aux'\n  paas ssh myapp -N -L 9000:localhost:8080\n\nThe app, its space and the platform must allow SSH (see 'paas ssh-enabled')."
    )]
    Ssh {
        name: String,
        /// Instance index
        #[arg(short = 'i', long = "app-instance-index", default_value_t = 0)]
        index: u32,
        /// Process type
        #[arg(long = "process", default_value = "web")]
        process: String,
        /// Command to run instead of a shell (may be given several times)
        #[arg(short = 'c', long = "command")]
        command: Vec<String>,
        /// Local port forwarding: [BIND_ADDRESS:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT
        #[arg(short = 'L')]
        forward: Vec<String>,
        /// Run no command: only forward ports
        #[arg(short = 'N')]
        no_command: bool,
        /// Ask for a terminal even for a command
        #[arg(short = 't', long = "force-pseudo-tty", conflicts_with = "disable_tty")]
        force_tty: bool,
        /// Never ask for a terminal
        #[arg(short = 'T', long = "disable-pseudo-tty")]
        disable_tty: bool,
    },
    /// Print a one-time code for an SSH login (user cf:<process guid>/<index>)
    SshCode,
    /// Allow SSH into an app
    EnableSsh { name: String },
    /// Whether ssh is allowed in a space of the targeted org
    SpaceSshAllowed { space: String },
    /// Refuse SSH into an app
    DisableSsh { name: String },
    /// Show whether SSH into an app is allowed, and if not why
    SshEnabled { name: String },
    /// Allow SSH into the apps of a space of the targeted org (space managers)
    AllowSpaceSsh { space: String },
    /// Refuse SSH into the apps of a space of the targeted org (space managers)
    DisallowSpaceSsh { space: String },
    /// Stop one instance of the app; the platform starts it again
    RestartAppInstance {
        name: String,
        index: u32,
        #[arg(long = "process", default_value = "web")]
        process: String,
    },
    /// Change or show instance count, memory and disk
    Scale {
        name: String,
        #[arg(short = 'i')]
        instances: Option<i64>,
        #[arg(short = 'm')]
        memory: Option<String>,
        #[arg(short = 'k')]
        disk: Option<String>,
        #[arg(long = "process", default_value = "web")]
        process: String,
    },
    /// Delete an app
    Delete {
        name: String,
        #[arg(short = 'f')]
        force: bool,
        #[arg(short = 'r')]
        routes: bool,
    },
    /// Show an app's environment
    Env {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Set an environment variable
    SetEnv { name: String, key: String, value: String },
    /// Remove an environment variable
    UnsetEnv { name: String, key: String },
    /// Recent events of an app
    Events {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Follow an app's logs, or show recent ones
    Logs {
        name: String,
        #[arg(long)]
        recent: bool,
    },
    /// List routes in the target space
    Routes {
        #[arg(long)]
        json: bool,
    },
    /// Show a route and the apps it sends requests to
    Route {
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
    },
    /// Say whether a route exists
    /// Delete the targeted space's routes mapped to no app
    DeleteOrphanedRoutes {
        #[arg(short = 'f')]
        force: bool,
    },
    CheckRoute {
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
    },
    /// Create a route
    CreateRoute {
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        /// A route option, KEY=VALUE (loadbalancing=round-robin|least-connection)
        #[arg(long = "option", short = 'o')]
        options: Vec<String>,
    },
    /// Set or remove a route's options (loadbalancing)
    UpdateRoute {
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        /// Set an option, KEY=VALUE (loadbalancing=round-robin|least-connection)
        #[arg(long = "option", short = 'o')]
        options: Vec<String>,
        /// Remove an option, KEY
        #[arg(long = "remove-option", short = 'r')]
        remove: Vec<String>,
    },
    /// Map a route to an app (creating the route if needed)
    MapRoute {
        app: String,
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        /// The protocol the app speaks on this route: http1 (default) or http2 (gRPC, h2c).
        #[arg(long = "app-protocol", value_parser = ["http1", "http2"])]
        app_protocol: Option<String>,
    },
    /// Change the protocol an app speaks on one of its routes
    UpdateDestination {
        app: String,
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        /// http1 or http2 (gRPC, h2c)
        #[arg(long = "app-protocol", value_parser = ["http1", "http2"])]
        app_protocol: String,
    },
    /// Unmap a route from an app
    UnmapRoute {
        app: String,
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
    },
    /// Delete a route
    DeleteRoute {
        domain: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List domains of the target org
    Domains {
        #[arg(long)]
        json: bool,
    },
    /// Create a private domain for an org
    CreatePrivateDomain { org: String, domain: String },
    /// Delete a private domain (it must have no routes)
    DeletePrivateDomain {
        domain: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Share a private domain with another org (its spaces may then route on it)
    SharePrivateDomain { org: String, domain: String },
    /// Take a private domain away from an org it was shared with
    UnsharePrivateDomain {
        org: String,
        domain: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Create a domain shared with every org (admin)
    CreateSharedDomain {
        domain: String,
        /// Only for container-to-container traffic
        #[arg(long)]
        internal: bool,
    },
    /// Delete a shared domain (admin; it must have no routes)
    DeleteSharedDomain {
        domain: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List orgs
    Orgs {
        #[arg(long)]
        json: bool,
    },
    /// Show an org's domains, quota and spaces
    Org {
        name: String,
        /// Print only the org's guid
        #[arg(long)]
        guid: bool,
    },
    /// Create an org
    CreateOrg { name: String },
    /// Rename an org
    RenameOrg { old: String, new: String },
    /// Delete an org
    DeleteOrg {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List spaces of the target org
    Spaces {
        #[arg(long)]
        json: bool,
    },
    /// Show a space of the targeted org: its apps, services and quota
    Space {
        name: String,
        /// Print only the space's guid
        #[arg(long)]
        guid: bool,
    },
    /// Rename a space of the targeted org
    RenameSpace { old: String, new: String },
    /// Create a space
    CreateSpace {
        name: String,
        #[arg(short = 'o')]
        org: Option<String>,
    },
    /// Delete a space
    DeleteSpace {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Create a user
    CreateUser { username: String, password: String },
    /// Delete a user
    DeleteUser {
        username: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Assign an org role (OrgManager, BillingManager, OrgAuditor, OrgUser)
    SetOrgRole { username: String, org: String, role: String },
    /// Remove an org role
    UnsetOrgRole { username: String, org: String, role: String },
    /// Assign a space role (SpaceManager, SpaceDeveloper, SpaceAuditor, SpaceSupporter)
    SetSpaceRole { username: String, org: String, space: String, role: String },
    /// Remove a space role
    UnsetSpaceRole { username: String, org: String, space: String, role: String },
    /// Users of an org by role
    OrgUsers {
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Users of a space by role
    SpaceUsers {
        org: String,
        space: String,
        #[arg(long)]
        json: bool,
    },
    /// List org quotas
    #[command(visible_alias = "quotas")]
    OrgQuotas {
        #[arg(long)]
        json: bool,
    },
    /// Show an org quota
    OrgQuota { name: String },
    /// Create an org quota (admin)
    #[command(visible_alias = "create-quota")]
    CreateOrgQuota {
        name: String,
        #[command(flatten)]
        limits: quotas::LimitArgs,
    },
    /// Change an org quota's name or limits (admin)
    UpdateOrgQuota {
        name: String,
        /// New name
        #[arg(short = 'n')]
        new_name: Option<String>,
        #[command(flatten)]
        limits: quotas::LimitArgs,
    },
    /// Delete an org quota no org has (admin)
    DeleteOrgQuota {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Assign a quota to an org (admin)
    #[command(visible_alias = "set-quota")]
    SetOrgQuota { org: String, quota: String },
    /// List the space quotas of the targeted org
    SpaceQuotas,
    /// Show a space quota of the targeted org
    SpaceQuota { name: String },
    /// Create a space quota in the targeted org (org managers)
    CreateSpaceQuota {
        name: String,
        #[command(flatten)]
        limits: quotas::LimitArgs,
    },
    /// Assign a space quota to a space of the targeted org
    SetSpaceQuota { space: String, quota: String },
    /// Remove a space quota from a space of the targeted org
    UnsetSpaceQuota { space: String, quota: String },
    /// Delete a space quota of the targeted org
    DeleteSpaceQuota {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Change a space quota of the targeted org
    UpdateSpaceQuota {
        name: String,
        /// New name
        #[arg(short = 'n')]
        new_name: Option<String>,
        #[command(flatten)]
        limits: quotas::LimitArgs,
    },
    /// List buildpacks
    Buildpacks {
        #[arg(long)]
        json: bool,
    },
    /// Create a buildpack from a zip
    CreateBuildpack { name: String, path: PathBuf, position: i64 },
    /// Update a buildpack
    UpdateBuildpack {
        name: String,
        #[arg(short = 'p')]
        path: Option<PathBuf>,
        #[arg(short = 'i')]
        position: Option<i64>,
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        lock: bool,
        #[arg(long)]
        unlock: bool,
    },
    /// Delete a buildpack (admin)
    /// Rename a buildpack (admin)
    RenameBuildpack { old: String, new: String },
    /// List isolation segments
    IsolationSegments,
    DeleteBuildpack {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List stacks
    Stacks {
        #[arg(long)]
        json: bool,
    },
    /// Show a stack
    Stack {
        name: String,
        /// Print only the stack's guid
        #[arg(long)]
        guid: bool,
    },
    /// Show the running environment variable group
    #[command(visible_alias = "revg")]
    RunningEnvironmentVariableGroup,
    /// Show the staging environment variable group
    #[command(visible_alias = "sevg")]
    StagingEnvironmentVariableGroup,
    /// Replace the running environment variable group with a JSON object (admin)
    #[command(visible_alias = "srevg")]
    SetRunningEnvironmentVariableGroup { json: String },
    /// Replace the staging environment variable group with a JSON object (admin)
    #[command(visible_alias = "ssevg")]
    SetStagingEnvironmentVariableGroup { json: String },
    /// List feature flags and their state
    FeatureFlags {
        #[arg(long)]
        json: bool,
    },
    /// Show one feature flag
    FeatureFlag {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn a feature flag on (admin)
    EnableFeatureFlag { name: String },
    /// Turn a feature flag off (admin)
    DisableFeatureFlag { name: String },
    /// List service instances in the target space
    #[command(visible_alias = "s")]
    Services {
        #[arg(long)]
        json: bool,
    },
    /// Make a user-provided service instance available to apps (credentials, a syslog drain)
    #[command(name = "create-user-provided-service", visible_alias = "cups")]
    CreateUserProvidedService {
        name: String,
        /// Credentials as a JSON object, or a file holding one
        #[arg(short = 'p')]
        credentials: Option<String>,
        /// Syslog drain URL (syslog://, syslog-tls:// or https://)
        #[arg(short = 'l')]
        syslog_drain_url: Option<String>,
        /// Route service URL (https://)
        #[arg(short = 'r')]
        route_service_url: Option<String>,
        /// Comma-separated tags
        #[arg(short = 't')]
        tags: Option<String>,
    },
    /// Update a user-provided service instance
    #[command(name = "update-user-provided-service", visible_alias = "uups")]
    UpdateUserProvidedService {
        name: String,
        #[arg(short = 'p')]
        credentials: Option<String>,
        #[arg(short = 'l')]
        syslog_drain_url: Option<String>,
        #[arg(short = 'r')]
        route_service_url: Option<String>,
        #[arg(short = 't')]
        tags: Option<String>,
    },
    /// List service offerings and their plans available in the target space
    #[command(visible_alias = "m")]
    Marketplace {
        /// Show the plans of one service offering
        #[arg(short = 'e')]
        service: Option<String>,
        /// Only offerings of this broker
        #[arg(short = 'b')]
        broker: Option<String>,
    },
    /// Create a managed service instance from a plan of the marketplace
    #[command(visible_alias = "cs")]
    CreateService {
        service: String,
        plan: String,
        name: String,
        /// Parameters for the broker, as a JSON object or a file holding one
        #[arg(short = 'c')]
        parameters: Option<String>,
        /// Comma-separated tags
        #[arg(short = 't')]
        tags: Option<String>,
        /// The broker offering the service, when several do
        #[arg(short = 'b')]
        broker: Option<String>,
        /// Wait for the operation to complete
        #[arg(long, short = 'w')]
        wait: bool,
    },
    /// Change a managed service instance's plan, parameters or tags
    UpdateService {
        name: String,
        #[arg(short = 'p')]
        plan: Option<String>,
        #[arg(short = 'c')]
        parameters: Option<String>,
        #[arg(short = 't')]
        tags: Option<String>,
        #[arg(long, short = 'w')]
        wait: bool,
    },
    /// Upgrade a managed service instance to its plan's current version (maintenance info)
    UpgradeService {
        name: String,
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(long, short = 'w')]
        wait: bool,
    },
    /// Remove a service offering with its plans, instances and bindings without asking its
    /// broker (for a broker that is gone)
    PurgeServiceOffering {
        service: String,
        /// The broker offering the service, when several do
        #[arg(short = 'b')]
        broker: Option<String>,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Remove a service instance from the platform without asking its broker
    PurgeServiceInstance {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Create a service key (credentials outside any app)
    #[command(visible_alias = "csk")]
    CreateServiceKey {
        service: String,
        key: String,
        #[arg(short = 'c')]
        parameters: Option<String>,
        #[arg(long, short = 'w')]
        wait: bool,
    },
    /// List the keys of a service instance
    #[command(visible_alias = "sk")]
    ServiceKeys { service: String },
    /// Show a service key's credentials
    ServiceKey {
        service: String,
        key: String,
        #[arg(long)]
        guid: bool,
    },
    /// Delete a service key
    #[command(visible_alias = "dsk")]
    DeleteServiceKey {
        service: String,
        key: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Share a managed service instance into another space
    ShareService {
        name: String,
        #[arg(short = 's')]
        space: String,
        #[arg(short = 'o')]
        org: Option<String>,
    },
    /// Stop sharing a service instance into a space (its apps there lose their bindings)
    UnshareService {
        name: String,
        #[arg(short = 's')]
        space: String,
        #[arg(short = 'o')]
        org: Option<String>,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List service brokers
    ServiceBrokers,
    /// Register a service broker (admin; space developers with --space-scoped)
    CreateServiceBroker {
        name: String,
        username: String,
        password: String,
        url: String,
        #[arg(long)]
        space_scoped: bool,
    },
    /// Change a service broker's credentials and URL (its catalog is read again)
    UpdateServiceBroker { name: String, username: String, password: String, url: String },
    /// Rename a service broker
    RenameServiceBroker { old: String, new: String },
    /// Remove a service broker (it must have no service instances)
    DeleteServiceBroker {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// List service plans and who may use them
    ServiceAccess {
        #[arg(short = 'b')]
        broker: Option<String>,
        #[arg(short = 'e')]
        service: Option<String>,
        #[arg(short = 'o')]
        org: Option<String>,
    },
    /// Let all orgs, or one, use a service offering's plans
    EnableServiceAccess {
        service: String,
        #[arg(short = 'p')]
        plan: Option<String>,
        #[arg(short = 'o')]
        org: Option<String>,
        #[arg(short = 'b')]
        broker: Option<String>,
    },
    /// Take away access to a service offering's plans
    DisableServiceAccess {
        service: String,
        #[arg(short = 'p')]
        plan: Option<String>,
        #[arg(short = 'o')]
        org: Option<String>,
        #[arg(short = 'b')]
        broker: Option<String>,
    },
    /// Show a service instance, its last operation and the apps bound to it
    Service {
        name: String,
        /// Print only the instance's guid
        #[arg(long)]
        guid: bool,
    },
    /// Rename a service instance
    RenameService { old: String, new: String },
    /// Delete a service instance (and its bindings)
    #[command(visible_alias = "ds")]
    DeleteService {
        name: String,
        #[arg(short = 'f')]
        force: bool,
    },
    /// Bind a service instance to an app
    #[command(visible_alias = "bs")]
    BindService {
        app: String,
        service: String,
        #[arg(long = "binding-name")]
        binding_name: Option<String>,
    },
    /// Unbind a service instance from an app
    #[command(visible_alias = "us")]
    UnbindService { app: String, service: String },
    /// Bind a service instance to an HTTP route (a route service: the route's requests go
    /// through the instance's route service URL)
    #[command(visible_alias = "brs")]
    BindRouteService {
        domain: String,
        service: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        /// Parameters as a JSON object, or a file holding one (user-provided services take none)
        #[arg(short = 'c')]
        parameters: Option<String>,
        /// Wait for the operation to complete (binding is immediate here)
        #[arg(short = 'w', long)]
        wait: bool,
    },
    /// Unbind a service instance from an HTTP route
    #[command(visible_alias = "urs")]
    UnbindRouteService {
        domain: String,
        service: String,
        #[arg(long = "hostname", short = 'n', default_value = "")]
        hostname: String,
        #[arg(long, default_value = "")]
        path: String,
        #[arg(short = 'f')]
        force: bool,
        /// Wait for the operation to complete (unbinding is immediate here)
        #[arg(short = 'w', long)]
        wait: bool,
    },
    /// Show the labels of an app, org, space, buildpack or service instance
    Labels { kind: labels::Kind, name: String },
    /// Set labels (KEY=VALUE) on an app, org, space, buildpack or service instance
    SetLabel {
        kind: labels::Kind,
        name: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
    /// Remove labels (KEY) from an app, org, space, buildpack or service instance
    UnsetLabel {
        kind: labels::Kind,
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Make a raw API request
    Curl {
        path: String,
        #[arg(short = 'X', default_value = "GET")]
        method: String,
        #[arg(short = 'd')]
        data: Option<String>,
        #[arg(short = 'H')]
        headers: Vec<String>,
    },
    /// Print a shell completion script
    Completion { shell: clap_complete::Shell },
}

fn client() -> Result<Client, CliError> {
    let cfg = Config::load()?;
    cfg.require_login()?;
    Ok(Client::new(cfg))
}

async fn curl(
    path: &str,
    method: &str,
    data: Option<String>,
    headers: Vec<String>,
) -> Result<(), CliError> {
    let mut c = client()?;
    let token = c.token().await?;
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CliError::Usage(format!("invalid method '{method}'")))?;
    let mut req = c.http.request(m, c.url(path)).bearer_auth(token);
    if let Some(d) = data {
        let body = if let Some(file) = d.strip_prefix('@') {
            std::fs::read_to_string(file)
                .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?
        } else {
            d
        };
        req = req.header("content-type", "application/json").body(body);
    }
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("invalid header '{h}'; use 'Name: value'")))?;
        req = req.header(k.trim(), v.trim());
    }
    let res = req.send().await?;
    let status = res.status();
    let text = res.text().await?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => output::print_json(&v),
        Err(_) => print!("{text}"),
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(CliError::Failed(format!("the API answered {status}")))
    }
}

async fn run(cmd: Command) -> Result<(), CliError> {
    use Command as C;
    match cmd {
        C::Api { url, .. } => session::api(url).await,
        C::Login { api, username, password, org, space } => {
            session::login(session::LoginArgs { api, user: username, password, org, space }).await
        }
        C::Logout => session::logout(),
        C::Auth { username, password } => session::auth(&username, &password).await,
        C::Passwd => session::passwd().await,
        C::OauthToken => session::oauth_token(&mut client()?).await,
        C::Version => {
            session::version();
            Ok(())
        }
        C::Target { org, space } => session::target(org, space).await,
        C::Push {
            name,
            manifest,
            path,
            buildpacks,
            memory,
            disk,
            instances,
            command,
            stack,
            health_check_type,
            endpoint,
            timeout,
            no_start,
            no_route,
            random_route,
            strategy,
            log_rate,
            no_manifest,
            vars_files,
            vars,
            droplet,
            docker_image,
            docker_username,
        } => {
            let mut c = client()?;
            let args = push::PushArgs {
                name,
                manifest,
                path,
                buildpacks,
                memory,
                disk,
                instances,
                command,
                stack,
                no_start,
                no_route,
                random_route,
                health_check_type,
                endpoint,
                timeout,
                strategy,
                log_rate,
                no_manifest,
                vars_files,
                vars,
                droplet,
                docker_image,
                docker_username,
            };
            push::push(&mut c, args).await
        }
        C::Apps { json } => apps::apps(&mut client()?, json).await,
        C::App { name, json, guid } => apps::app(&mut client()?, &name, json, guid).await,
        C::CreateApp { name, app_type } => {
            apps::create_app(&mut client()?, &name, app_type.as_deref()).await
        }
        C::Rename { old, new } => apps::rename(&mut client()?, &old, &new).await,
        C::ApplyManifest { manifest, vars_files, vars } => {
            push::apply_manifest(&mut client()?, &manifest, vars_files, vars).await
        }
        C::CreateAppManifest { name, path } => {
            apps::create_manifest(&mut client()?, &name, path.as_deref()).await
        }
        C::CopySource { source, target, no_restart } => {
            droplets::copy_source(&mut client()?, &source, &target, !no_restart).await
        }
        C::GetHealthCheck { name } => health::get(&mut client()?, &name).await,
        C::SetHealthCheck { name, kind, endpoint, invocation_timeout, process } => {
            let h = health::HealthArgs { kind, endpoint, invocation_timeout, process };
            health::set(&mut client()?, &name, h).await
        }
        C::Packages { name } => droplets::packages(&mut client()?, &name).await,
        C::CreatePackage { name, path } => {
            droplets::create_package(&mut client()?, &name, path.as_deref()).await
        }
        C::StagePackage { name, package_guid } => {
            droplets::stage_package(&mut client()?, &name, package_guid.as_deref()).await
        }
        C::Droplets { name } => droplets::droplets(&mut client()?, &name).await,
        C::SetDroplet { name, droplet } => {
            droplets::set_droplet(&mut client()?, &name, &droplet).await
        }
        C::DownloadDroplet { name, droplet, path } => {
            droplets::download(&mut client()?, &name, droplet.as_deref(), path.as_deref()).await
        }
        C::ExportImage { name, droplet, path } => {
            droplets::export_image(&mut client()?, &name, droplet.as_deref(), path.as_deref()).await
        }
        C::Start { name } => apps::start(&mut client()?, &name).await,
        C::Stop { name } => apps::stop(&mut client()?, &name).await,
        C::Restart { name, strategy } => apps::restart(&mut client()?, &name, &strategy).await,
        C::Restage { name, strategy } => apps::restage(&mut client()?, &name, &strategy).await,
        C::CancelDeployment { name } => deploy::cancel(&mut client()?, &name).await,
        C::ContinueDeployment { name, no_wait } => {
            deploy::resume(&mut client()?, &name, no_wait).await
        }
        C::Revisions { name } => deploy::revisions(&mut client()?, &name).await,
        C::Revision { name, version } => deploy::revision(&mut client()?, &name, version).await,
        C::Rollback { name, version, force, strategy } => {
            deploy::rollback(&mut client()?, &name, version, force, &strategy).await
        }
        C::RunTask { name, command_arg, command, task_name, memory, disk, process, wait } => {
            let r = tasks::RunTask {
                command: command.or(command_arg),
                name: task_name,
                memory,
                disk,
                process,
                wait,
            };
            tasks::run(&mut client()?, &name, r).await
        }
        C::Tasks { name } => tasks::list(&mut client()?, &name).await,
        C::Task { name, id } => tasks::show(&mut client()?, &name, id).await,
        C::TerminateTask { name, id } => tasks::terminate(&mut client()?, &name, id).await,
        C::Ssh { name, index, process, command, forward, no_command, force_tty, disable_tty } => {
            let r = ssh::Request {
                app: name,
                index,
                process,
                commands: command,
                forwards: forward,
                no_command,
                force_tty,
                disable_tty,
            };
            let code = ssh::ssh(&mut client()?, r).await?;
            std::process::exit(code)
        }
        C::SshCode => ssh::print_code(&mut client()?).await,
        C::EnableSsh { name } => ssh::set_app(&mut client()?, &name, true).await,
        C::SpaceSshAllowed { space } => ssh::space_allowed(&mut client()?, &space).await,
        C::DisableSsh { name } => ssh::set_app(&mut client()?, &name, false).await,
        C::SshEnabled { name } => ssh::enabled(&mut client()?, &name).await,
        C::AllowSpaceSsh { space } => ssh::set_space(&mut client()?, &space, true).await,
        C::DisallowSpaceSsh { space } => ssh::set_space(&mut client()?, &space, false).await,
        C::RestartAppInstance { name, index, process } => {
            deploy::restart_instance(&mut client()?, &name, index, &process).await
        }
        C::Scale { name, instances, memory, disk, process } => {
            apps::scale(&mut client()?, &name, instances, memory, disk, &process).await
        }
        C::Delete { name, force, routes } => {
            apps::delete(&mut client()?, &name, force, routes).await
        }
        C::Env { name, json } => apps::env(&mut client()?, &name, json).await,
        C::SetEnv { name, key, value } => {
            apps::set_env(&mut client()?, &name, &key, Some(&value)).await
        }
        C::UnsetEnv { name, key } => apps::set_env(&mut client()?, &name, &key, None).await,
        C::Events { name, json } => apps::events(&mut client()?, &name, json).await,
        C::Logs { name, recent } => logs::logs(&mut client()?, &name, recent).await,
        C::Routes { json } => routes::routes(&mut client()?, json).await,
        C::Route { domain, hostname, path } => {
            routes::route(&mut client()?, &domain, &hostname, &path).await
        }
        C::DeleteOrphanedRoutes { force } => routes::delete_orphaned(&mut client()?, force).await,
        C::CheckRoute { domain, hostname, path } => {
            routes::check_route(&mut client()?, &domain, &hostname, &path).await
        }
        C::CreateRoute { domain, hostname, path, options } => {
            let options = routes::parse_options(&options)?;
            routes::create_route(&mut client()?, &domain, &hostname, &path, options)
                .await
                .map(|_| ())
        }
        C::UpdateRoute { domain, hostname, path, options, remove } => {
            routes::update_route(&mut client()?, &domain, &hostname, &path, &options, &remove).await
        }
        C::MapRoute { app, domain, hostname, path, app_protocol } => {
            let protocol = app_protocol.as_deref();
            routes::map_route(&mut client()?, &app, &domain, &hostname, &path, protocol).await
        }
        C::UpdateDestination { app, domain, hostname, path, app_protocol } => {
            routes::update_destination(
                &mut client()?,
                &app,
                &domain,
                &hostname,
                &path,
                &app_protocol,
            )
            .await
        }
        C::UnmapRoute { app, domain, hostname, path } => {
            routes::unmap_route(&mut client()?, &app, &domain, &hostname, &path).await
        }
        C::DeleteRoute { domain, hostname, path, force } => {
            routes::delete_route(&mut client()?, &domain, &hostname, &path, force).await
        }
        C::Domains { json } => routes::domains(&mut client()?, json).await,
        C::CreatePrivateDomain { org, domain } => {
            routes::create_private_domain(&mut client()?, &org, &domain).await
        }
        C::DeletePrivateDomain { domain, force } => {
            routes::delete_domain(&mut client()?, &domain, false, force).await
        }
        C::SharePrivateDomain { org, domain } => {
            routes::share_domain(&mut client()?, &org, &domain).await
        }
        C::UnsharePrivateDomain { org, domain, force } => {
            routes::unshare_domain(&mut client()?, &org, &domain, force).await
        }
        C::CreateSharedDomain { domain, internal } => {
            routes::create_shared_domain(&mut client()?, &domain, internal).await
        }
        C::DeleteSharedDomain { domain, force } => {
            routes::delete_domain(&mut client()?, &domain, true, force).await
        }
        C::Services { json } => services::services(&mut client()?, json).await,
        C::CreateUserProvidedService {
            name,
            credentials,
            syslog_drain_url,
            route_service_url,
            tags,
        } => {
            let a =
                services::UpsArgs { name, credentials, syslog_drain_url, route_service_url, tags };
            services::create(&mut client()?, a).await
        }
        C::UpdateUserProvidedService {
            name,
            credentials,
            syslog_drain_url,
            route_service_url,
            tags,
        } => {
            let a =
                services::UpsArgs { name, credentials, syslog_drain_url, route_service_url, tags };
            services::update(&mut client()?, a).await
        }
        C::Service { name, guid } => services::service(&mut client()?, &name, guid).await,
        C::RenameService { old, new } => services::rename(&mut client()?, &old, &new).await,
        C::DeleteService { name, force } => services::delete(&mut client()?, &name, force).await,
        C::Marketplace { service, broker } => {
            brokers::marketplace(&mut client()?, service.as_deref(), broker.as_deref()).await
        }
        C::CreateService { service, plan, name, parameters, tags, broker, wait } => {
            let a = brokers::CreateArgs { service, plan, name, parameters, tags, broker, wait };
            brokers::create_service(&mut client()?, a).await
        }
        C::UpdateService { name, plan, parameters, tags, wait } => {
            let a = brokers::UpdateArgs { name, plan, parameters, tags, wait };
            brokers::update_service(&mut client()?, a).await
        }
        C::UpgradeService { name, force, wait } => {
            brokers::upgrade_service(&mut client()?, &name, force, wait).await
        }
        C::PurgeServiceOffering { service, broker, force } => {
            brokers::purge_offering(&mut client()?, &service, broker.as_deref(), force).await
        }
        C::PurgeServiceInstance { name, force } => {
            brokers::purge(&mut client()?, &name, force).await
        }
        C::CreateServiceKey { service, key, parameters, wait } => {
            brokers::create_key(&mut client()?, &service, &key, parameters.as_deref(), wait).await
        }
        C::ServiceKeys { service } => brokers::keys(&mut client()?, &service).await,
        C::ServiceKey { service, key, guid } => {
            brokers::key(&mut client()?, &service, &key, guid).await
        }
        C::DeleteServiceKey { service, key, force } => {
            brokers::delete_key(&mut client()?, &service, &key, force).await
        }
        C::ShareService { name, space, org } => {
            brokers::share(&mut client()?, &name, &space, org.as_deref()).await
        }
        C::UnshareService { name, space, org, force } => {
            brokers::unshare(&mut client()?, &name, &space, org.as_deref(), force).await
        }
        C::ServiceBrokers => brokers::brokers(&mut client()?).await,
        C::CreateServiceBroker { name, username, password, url, space_scoped } => {
            brokers::create_broker(&mut client()?, &name, &username, &password, &url, space_scoped)
                .await
        }
        C::UpdateServiceBroker { name, username, password, url } => {
            brokers::update_broker(&mut client()?, &name, &username, &password, &url).await
        }
        C::RenameServiceBroker { old, new } => {
            brokers::rename_broker(&mut client()?, &old, &new).await
        }
        C::DeleteServiceBroker { name, force } => {
            brokers::delete_broker(&mut client()?, &name, force).await
        }
        C::ServiceAccess { broker, service, org } => {
            brokers::access(&mut client()?, broker.as_deref(), service.as_deref(), org.as_deref())
                .await
        }
        C::EnableServiceAccess { service, plan, org, broker } => {
            let (p, o, b) = (plan.as_deref(), org.as_deref(), broker.as_deref());
            brokers::set_access(&mut client()?, true, &service, p, o, b).await
        }
        C::DisableServiceAccess { service, plan, org, broker } => {
            let (p, o, b) = (plan.as_deref(), org.as_deref(), broker.as_deref());
            brokers::set_access(&mut client()?, false, &service, p, o, b).await
        }
        C::BindService { app, service, binding_name } => {
            services::bind(&mut client()?, &app, &service, binding_name.as_deref()).await
        }
        C::UnbindService { app, service } => services::unbind(&mut client()?, &app, &service).await,
        C::BindRouteService { domain, service, hostname, path, parameters, wait: _ } => {
            let a = route_services::RouteServiceArgs { domain, service, hostname, path };
            route_services::bind(&mut client()?, &a, parameters.as_deref()).await
        }
        C::UnbindRouteService { domain, service, hostname, path, force, wait: _ } => {
            let a = route_services::RouteServiceArgs { domain, service, hostname, path };
            route_services::unbind(&mut client()?, &a, force).await
        }
        C::Orgs { json } => admin::orgs(&mut client()?, json).await,
        C::Org { name, guid } => admin::org(&mut client()?, &name, guid).await,
        C::CreateOrg { name } => admin::create_org(&mut client()?, &name).await,
        C::RenameOrg { old, new } => admin::rename_org(&mut client()?, &old, &new).await,
        C::Space { name, guid } => admin::space(&mut client()?, &name, guid).await,
        C::RenameSpace { old, new } => admin::rename_space(&mut client()?, &old, &new).await,
        C::DeleteOrg { name, force } => admin::delete_org(&mut client()?, &name, force).await,
        C::Spaces { json } => admin::spaces(&mut client()?, json).await,
        C::CreateSpace { name, org } => {
            admin::create_space(&mut client()?, &name, org.as_deref()).await
        }
        C::DeleteSpace { name, force } => admin::delete_space(&mut client()?, &name, force).await,
        C::CreateUser { username, password } => {
            admin::create_user(&mut client()?, &username, &password).await
        }
        C::DeleteUser { username, force } => {
            admin::delete_user(&mut client()?, &username, force).await
        }
        C::SetOrgRole { username, org, role } => {
            admin::set_role(&mut client()?, &username, &org, None, &role).await
        }
        C::UnsetOrgRole { username, org, role } => {
            admin::unset_role(&mut client()?, &username, &org, None, &role).await
        }
        C::SetSpaceRole { username, org, space, role } => {
            admin::set_role(&mut client()?, &username, &org, Some(&space), &role).await
        }
        C::UnsetSpaceRole { username, org, space, role } => {
            admin::unset_role(&mut client()?, &username, &org, Some(&space), &role).await
        }
        C::OrgUsers { org, json } => admin::users_of(&mut client()?, &org, None, json).await,
        C::SpaceUsers { org, space, json } => {
            admin::users_of(&mut client()?, &org, Some(&space), json).await
        }
        C::OrgQuotas { json } => quotas::org_quotas(&mut client()?, json).await,
        C::OrgQuota { name } => quotas::org_quota(&mut client()?, &name).await,
        C::CreateOrgQuota { name, limits } => {
            quotas::create_org_quota(&mut client()?, &name, &limits).await
        }
        C::UpdateOrgQuota { name, new_name, limits } => {
            quotas::update_org_quota(&mut client()?, &name, new_name.as_deref(), &limits).await
        }
        C::DeleteOrgQuota { name, force } => {
            quotas::delete_org_quota(&mut client()?, &name, force).await
        }
        C::UpdateSpaceQuota { name, new_name, limits } => {
            quotas::update_space_quota(&mut client()?, &name, new_name.as_deref(), &limits).await
        }
        C::SetOrgQuota { org, quota } => quotas::set_org_quota(&mut client()?, &org, &quota).await,
        C::SpaceQuotas => quotas::space_quotas(&mut client()?).await,
        C::SpaceQuota { name } => quotas::space_quota(&mut client()?, &name).await,
        C::CreateSpaceQuota { name, limits } => {
            quotas::create_space_quota(&mut client()?, &name, &limits).await
        }
        C::SetSpaceQuota { space, quota } => {
            quotas::assign_space_quota(&mut client()?, &space, &quota, true).await
        }
        C::UnsetSpaceQuota { space, quota } => {
            quotas::assign_space_quota(&mut client()?, &space, &quota, false).await
        }
        C::DeleteSpaceQuota { name, force } => {
            quotas::delete_space_quota(&mut client()?, &name, force).await
        }
        C::Buildpacks { json } => admin::buildpacks(&mut client()?, json).await,
        C::CreateBuildpack { name, path, position } => {
            admin::create_buildpack(&mut client()?, &name, &path, position).await
        }
        C::UpdateBuildpack { name, path, position, enable, disable, lock, unlock } => {
            let flag = |on: bool, off: bool| {
                if on {
                    Some(true)
                } else if off {
                    Some(false)
                } else {
                    None
                }
            };
            admin::update_buildpack(
                &mut client()?,
                &name,
                path.as_deref(),
                position,
                flag(enable, disable),
                flag(lock, unlock),
            )
            .await
        }
        C::RenameBuildpack { old, new } => {
            admin::rename_buildpack(&mut client()?, &old, &new).await
        }
        C::IsolationSegments => admin::isolation_segments(&mut client()?).await,
        C::DeleteBuildpack { name, force } => {
            admin::delete_buildpack(&mut client()?, &name, force).await
        }
        C::Stacks { json } => admin::stacks(&mut client()?, json).await,
        C::Stack { name, guid } => admin::stack(&mut client()?, &name, guid).await,
        C::RunningEnvironmentVariableGroup => env_groups::show(&mut client()?, "running").await,
        C::StagingEnvironmentVariableGroup => env_groups::show(&mut client()?, "staging").await,
        C::SetRunningEnvironmentVariableGroup { json } => {
            env_groups::set(&mut client()?, "running", &json).await
        }
        C::SetStagingEnvironmentVariableGroup { json } => {
            env_groups::set(&mut client()?, "staging", &json).await
        }
        C::FeatureFlags { json } => admin::feature_flags(&mut client()?, json).await,
        C::FeatureFlag { name, json } => admin::feature_flag(&mut client()?, &name, json).await,
        C::EnableFeatureFlag { name } => admin::set_feature_flag(&mut client()?, &name, true).await,
        C::DisableFeatureFlag { name } => {
            admin::set_feature_flag(&mut client()?, &name, false).await
        }
        C::Labels { kind, name } => labels::labels(&mut client()?, kind, &name).await,
        C::SetLabel { kind, name, labels } => {
            labels::set(&mut client()?, kind, &name, &labels).await
        }
        C::UnsetLabel { kind, name, keys } => {
            labels::unset(&mut client()?, kind, &name, &keys).await
        }
        C::Curl { path, method, data, headers } => curl(&path, &method, data, headers).await,
        C::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "paas", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("FAILED\ncannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli.command)) {
        eprintln!("{}", e.render());
        std::process::exit(e.exit_code());
    }
}
