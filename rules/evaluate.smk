# Checkpoints to metrics (one JSON per experiment, every seed) and metrics to one table per paper.


localrules:
    table_metrics,


rule evaluate:
    """Score every seed's checkpoint of an experiment on its test images."""
    input:
        unpack(evaluate_inputs),
    output:
        "results/metrics/{experiment}.json",
    log:
        "logs/evaluate/{experiment}.log",
    benchmark:
        "benchmarks/evaluate/{experiment}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT,
    conda:
        "../envs/structae.yaml"
    resources:
        gpu=evaluate_gpus,
    params:
        spec=experiment_spec,
        split=split_option,
        reference=reference_option,
    shell:
        "exec structae evaluate --experiment {wildcards.experiment:q} --spec {params.spec:q} --data {input.data:q} "
        "{params.split:q} --checkpoints {input.checkpoints:q} {params.reference:q} --out {output:q} > {log:q} 2>&1"


rule evaluate_fresh:
    """Score every seed's checkpoint on the test split generated anew with evaluate.fresh_test_seed."""
    input:
        unpack(fresh_evaluate_inputs),
    output:
        "results/metrics/fresh/{experiment}.json",
    log:
        "logs/evaluate_fresh/{experiment}.log",
    wildcard_constraints:
        experiment=FRESH_EXPERIMENT,
    conda:
        "../envs/structae.yaml"
    params:
        spec=experiment_spec,
        seed=fresh_test_seed,
        reference=reference_option,
    shell:
        "exec structae evaluate --experiment {wildcards.experiment:q} --spec {params.spec:q} --data {input.data:q} "
        "--fresh-seed {params.seed:q} --checkpoints {input.checkpoints:q} {params.reference:q} --out {output:q} "
        "> {log:q} 2>&1"


rule table_metrics:
    """Collect a paper's metrics into a tidy CSV, a markdown table and the same table in HTML for the report."""
    input:
        table_metrics_of,
    output:
        csv="results/tables/{paper}.csv",
        markdown="results/tables/{paper}.md",
        html=report(
            "results/tables/{paper}.html", category="{paper}", subcategory="tables", caption="../report/table.rst"
        ),
    log:
        "logs/table_metrics/{paper}.log",
    wildcard_constraints:
        paper=TABLE,
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae table --metrics {input:q} --out {output.csv:q} --markdown {output.markdown:q} "
        "--html {output.html:q} > {log:q} 2>&1"
