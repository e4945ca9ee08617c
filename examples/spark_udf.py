"""Score a large dataset on Spark with the registered production model (mlflow.pyfunc.spark_udf).

Run where PySpark and the model's requirements are installed (``pip install 'conforto[spark]'``
from this repository or its wheel on the driver and every executor, Java 17+), with
``MLFLOW_TRACKING_URI`` pointing at the registry::

    python examples/spark_udf.py rows.parquet scored.parquet [--master spark://host:7077]

Every input column the model's signature names is passed to it; the output is the input with
the model's columns (``predicted_class``, ``p_cool``, ``p_neutral``, ``p_warm``,
``prediction_set``, ``reason``, ``flags``) added.
"""

from __future__ import annotations

import argparse

import mlflow.pyfunc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the PySpark convention

MODEL = "models:/conforto-thermal-sensation@production"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="Parquet file or folder of observations")
    parser.add_argument("output", help="Parquet folder to write")
    parser.add_argument("--model", default=MODEL, help="MLflow model URI")
    parser.add_argument("--master", default="local[2]", help="Spark master URL")
    args = parser.parse_args()

    spark = SparkSession.builder.master(args.master).appName("conforto-score").getOrCreate()
    # env_manager="local": the executors already have the model's requirements installed
    predict = mlflow.pyfunc.spark_udf(spark, args.model, env_manager="local")
    rows = spark.read.parquet(args.input)
    named = [c.name for c in predict.metadata.get_input_schema().inputs]
    scored = rows.withColumn("prediction", predict(*[c for c in named if c in rows.columns]))
    scored = scored.select(*rows.columns, "prediction.*")
    # spark_udf casts a struct's text fields with astype(str), so a row the model refused (its
    # reason given) would read "nan" for a class and a set it does not have: null them again
    for name in ("predicted_class", "prediction_set"):
        scored = scored.withColumn(name, F.when(F.col("reason") == "", F.col(name)))
    scored.write.mode("overwrite").parquet(args.output)
    spark.stop()


if __name__ == "__main__":
    main()
