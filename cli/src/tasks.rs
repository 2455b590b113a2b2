//! One-off tasks, as the cf CLI v8 has them: `run-task`, `tasks`, `task`, `terminate-task`.

use std::time::{Duration, Instant};

use wire::v3::task::NewTask;
use wire::v3::{Guid, Process, Task, TaskState};

use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bold, pairs, table};

/// Flags of `run-task`.
#[derive(Debug, Clone, Default)]
pub struct RunTask {
    pub command: Option<String>,
    pub name: Option<String>,
    pub memory: Option<String>,
    pub disk: Option<String>,
    pub process: Option<String>,
    pub wait: bool,
}

fn size(s: &Option<String>) -> Result<Option<i64>> {
    s.as_deref()
        .map(|v| {
            manifest::parse_size_mb(v)
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .map_err(|e| CliError::Usage(format!("invalid size '{v}': {e}")))
        })
        .transpose()
}

pub async fn run(c: &mut Client, name: &str, r: RunTask) -> Result<()> {
    let app = c.app(name).await?;
    let template = match &r.process {
        Some(kind) => {
            let p: Process = c.get(&format!("/v3/apps/{}/processes/{kind}", app.guid)).await?;
            Some(wire::v3::task::TaskTemplate { process: Guid::new(p.guid) })
        }
        None => None,
    };
    if r.command.is_none() && template.is_none() {
        return Err(CliError::Usage(
            "run-task needs a command: --command CMD (or --process TYPE to run that process's command)"
                .into(),
        ));
    }
    let body = NewTask {
        command: r.command.clone(),
        name: r.name.clone(),
        memory_in_mb: size(&r.memory)?,
        disk_in_mb: size(&r.disk)?,
        template,
        ..Default::default()
    };
    println!("Creating task for app {}...", bold(name));
    let t: Task = c.post(&format!("/v3/apps/{}/tasks", app.guid), &body).await?;
    println!("\nTask has been submitted successfully for execution.");
    println!("{}", pairs(&[("task name", t.name.clone()), ("task id", t.sequence_id.to_string())]));
    if !r.wait {
        return Ok(());
    }
    let t = wait(c, &t).await?;
    match t.state {
        TaskState::Succeeded => {
            println!("Task {} SUCCEEDED.", t.sequence_id);
            Ok(())
        }
        _ => Err(CliError::Failed(format!(
            "Task {} {}: {}\nTIP: 'paas logs {name} --recent' shows its output.",
            t.sequence_id,
            t.state,
            t.result.failure_reason.unwrap_or_default()
        ))),
    }
}

async fn wait(c: &mut Client, t: &Task) -> Result<Task> {
    let deadline = Instant::now() + Duration::from_secs(60 * 60);
    loop {
        let now: Task = c.get(&format!("/v3/tasks/{}", t.guid)).await?;
        if now.state.is_final() {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "Task {} still runs after an hour.",
                t.sequence_id
            )));
        }
        tokio::time::sleep(c.poll).await;
    }
}

pub async fn list(c: &mut Client, name: &str) -> Result<()> {
    let app = c.app(name).await?;
    println!("Getting tasks for app {} as {}...\n", bold(name), c.cfg.user().unwrap_or_default());
    let tasks: Vec<Task> = c
        .list(&format!("/v3/apps/{}/tasks{}", app.guid, query(&[("order_by", "-created_at")])))
        .await?;
    if tasks.is_empty() {
        println!("No tasks found.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.sequence_id.to_string(),
                t.name.clone(),
                t.state.to_string(),
                t.created_at.clone(),
                t.command.clone().unwrap_or_else(|| "[hidden]".into()),
            ]
        })
        .collect();
    println!("{}", table(&["id", "name", "state", "start time", "command"], &rows));
    Ok(())
}

async fn by_sequence(c: &mut Client, app_name: &str, id: i64) -> Result<Task> {
    let app = c.app(app_name).await?;
    let path =
        format!("/v3/apps/{}/tasks{}", app.guid, query(&[("sequence_ids", &id.to_string())]));
    let tasks: Vec<Task> = c.list(&path).await?;
    tasks.into_iter().next().ok_or_else(|| {
        CliError::NotFound(format!(
            "Task sequence ID {id} not found for app '{app_name}'.\nTIP: 'paas tasks {app_name}' lists them."
        ))
    })
}

pub async fn show(c: &mut Client, name: &str, id: i64) -> Result<()> {
    let t = by_sequence(c, name, id).await?;
    println!(
        "{}",
        pairs(&[
            ("id", t.sequence_id.to_string()),
            ("name", t.name.clone()),
            ("state", t.state.to_string()),
            ("start time", t.created_at.clone()),
            ("command", t.command.clone().unwrap_or_else(|| "[hidden]".into())),
            ("memory in mb", t.memory_in_mb.to_string()),
            ("disk in mb", t.disk_in_mb.to_string()),
            ("failure reason", t.result.failure_reason.clone().unwrap_or_default()),
        ])
    );
    Ok(())
}

pub async fn terminate(c: &mut Client, name: &str, id: i64) -> Result<()> {
    let t = by_sequence(c, name, id).await?;
    println!("Terminating task {id} of app {}...", bold(name));
    let _: Task = c.post(&format!("/v3/tasks/{}/actions/cancel", t.guid), &()).await?;
    println!("OK");
    Ok(())
}
