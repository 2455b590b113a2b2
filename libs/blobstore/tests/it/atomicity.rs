//! Failed, aborted and concurrent writes.

use std::sync::Arc;

use blobstore::{Blobstore, ByteStream};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::{store, temp_count};

#[tokio::test]
async fn failing_stream_stores_nothing() {
    let (_dir, store) = store();
    let chunks: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();
    assert!(store.put_stream("packages/p", chunks).await.is_err());
    assert!(!store.exists("packages/p").await.expect("exists"));
    assert_eq!(temp_count(&store), 0);
}

#[tokio::test]
async fn aborted_put_leaves_no_blob_and_no_temp() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    // Yields one chunk, signals when asked for the second, then never ends.
    let stream = futures::stream::once(async { Ok(Bytes::from_static(b"first chunk")) })
        .chain(futures::stream::poll_fn(move |_| {
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
            }
            std::task::Poll::Pending
        }))
        .boxed();
    let task = {
        let store = store.clone();
        tokio::spawn(async move { store.put_stream("droplets/d", stream).await })
    };
    started_rx.await.expect("put started");
    assert_eq!(temp_count(&store), 1, "a temp file is being written");
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert!(!store.exists("droplets/d").await.expect("exists"));
    assert_eq!(temp_count(&store), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_one_key_stay_consistent() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![i; 100_000 + usize::from(i)];
            let chunks = futures::stream::iter(
                body.chunks(7000).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>(),
            );
            store.put_stream("packages/same", chunks.boxed()).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("put");
    }
    let mut reader = store.get_verified("packages/same").await.expect("consistent blob and info");
    let info = reader.info().clone();
    let mut content = Vec::new();
    reader.read_to_end(&mut content).await.expect("read");
    assert_eq!(content.len() as u64, info.size);
    let first = content[0];
    assert!(content.iter().all(|b| *b == first), "blob mixes writers");
    assert_eq!(temp_count(&store), 0);
}
