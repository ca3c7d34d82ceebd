# From sources to one HDF5 file per dataset split, and recombination splits as index files.


localrules:
    download_source,


rule download_source:
    output:
        "data/raw/{source}/{file}",
    wildcard_constraints:
        source=SOURCE,
        file=SOURCE_FILE,
    params:
        mirror=config["sources"]["mirror"] or "",
    log:
        "logs/download_source/{source}/{file}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae data download --source {wildcards.source:q} --out {output:q} --mirror {params.mirror:q} "
        "> {log:q} 2>&1"


rule generate_dataset:
    output:
        "data/processed/{dataset}/{split}.h5",
    wildcard_constraints:
        dataset=GENERATED,
    params:
        spec=dataset_spec,
    log:
        "logs/generate_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/generate_dataset/{dataset}/{split}.tsv"
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae data make --dataset {wildcards.dataset:q} --split {wildcards.split:q} --out {output:q} "
        "--spec {params.spec:q} > {log:q} 2>&1"


rule convert_dataset:
    input:
        raw=raw_inputs,
    output:
        "data/processed/{dataset}/{split}.h5",
    wildcard_constraints:
        dataset=CONVERTED,
    params:
        spec=dataset_spec,
    log:
        "logs/convert_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/convert_dataset/{dataset}/{split}.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae data make --dataset {wildcards.dataset:q} --split {wildcards.split:q} --out {output:q} "
        "--raw {input.raw:q} --spec {params.spec:q} > {log:q} 2>&1"


rule split_dataset:
    input:
        split_source,
    output:
        "data/splits/{dataset}/{split}.npz",
    params:
        spec=split_spec,
    log:
        "logs/split_dataset/{dataset}/{split}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae split --split {wildcards.split:q} --data {input:q} --out {output:q} --spec {params.spec:q} "
        "> {log:q} 2>&1"
