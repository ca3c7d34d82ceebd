# Checkpoints to metrics (one JSON per experiment, every seed) and metrics to one table per paper.


localrules:
    table_metrics,


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        "results/metrics/{experiment}.json",
    wildcard_constraints:
        experiment=EXPERIMENT,
    params:
        spec=experiment_spec,
        split=split_option,
        reference=reference_option,
    log:
        "logs/evaluate/{experiment}.log",
    benchmark:
        "benchmarks/evaluate/{experiment}.tsv"
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae evaluate --experiment {wildcards.experiment:q} --spec {params.spec:q} --data {input.data:q} "
        "{params.split:q} --checkpoints {input.checkpoints:q} {params.reference:q} --out {output:q} > {log:q} 2>&1"


rule table_metrics:
    input:
        metrics_of,
    output:
        csv="results/tables/{paper}.csv",
        markdown=report("results/tables/{paper}.md", category="{paper}", subcategory="tables",
                        caption="../report/table.rst"),
    wildcard_constraints:
        paper=TABLE,
    log:
        "logs/table_metrics/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae table --metrics {input:q} --out {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"
