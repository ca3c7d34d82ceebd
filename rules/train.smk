# One job per (experiment, seed). An interrupted job keeps its state under results/resume/, which is
# not an output, so a rerun (or a retry after preemption) resumes instead of starting over. The shell line
# execs the trainer: it is the job's process, so the SIGTERM that stops the job reaches it (it saves and
# exits) instead of killing a wrapper shell and leaving the trainer running.


rule train:
    """Train one seed of an experiment; resumes an interrupted run."""
    input:
        unpack(experiment_inputs),
    output:
        model="results/checkpoints/{experiment}/seed{seed}/model.pt",
        log="results/checkpoints/{experiment}/seed{seed}/train_log.csv",
    log:
        "logs/train/{experiment}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{experiment}/seed{seed}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT,
        seed=r"\d+",
    conda:
        "../envs/structae.yaml"
    threads: train_resource("cpus")
    resources:
        # sbatch --cpus-per-task; unlike threads, not capped by the submit host's cores
        cpus_per_task=train_resource("cpus"),
        gpu=train_resource("gpus"),
        mem_mb=train_resource("mem_mb"),
        runtime=train_runtime,
    params:
        spec=train_spec,
        split=split_option,
        val=val_option,
        launcher=train_launcher,
    shell:
        "exec {params.launcher:q} train --experiment {wildcards.experiment:q} --seed {wildcards.seed:q} "
        "--spec {params.spec:q} --data {input.data:q} {params.split:q} {params.val:q} --threads {resources.cpus_per_task:q} "
        "--out {output.model:q} --train-log {output.log:q} > {log:q} 2>&1"
